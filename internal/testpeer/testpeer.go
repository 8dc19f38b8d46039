// Package testpeer is shared test support for wsecho's test files: the rule
// for a missing third-party peer, finding Node with the ws library and
// Python with websockets, a test certificate authority, and the pieces of a
// WebSocket server written by hand (the opening handshake, a ping flood).
//
// It uses only the standard library and is imported only from _test.go
// files: the shipped program must never depend on it.
package testpeer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// Missing ends a test whose third-party peer (a program, a library or a
// device it needs) is missing: it skips the test with the message, except
// when the environment variable CI is "true", where every peer must be
// installed (.ci/run installs them) and Missing fails the test instead.
// Like t.Skip and t.Fatal, it must be called from the test's goroutine and
// does not return.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: a missing peer is a failure)", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// PythonPath is the Python that has Debian's python3-websockets.
const PythonPath = "/usr/bin/python3"

var pythonErr = sync.OnceValue(func() error {
	out, err := exec.Command(PythonPath, "-c", "import websockets").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import websockets (apt-get install python3-websockets; .ci/run installs it): %v: %s", PythonPath, err, bytes.TrimSpace(out))
	}
	return nil
})

// Python returns the path of a Python that can import the websockets
// library, or ends the test through Missing.
func Python(t testing.TB) string {
	t.Helper()
	if err := pythonErr(); err != nil {
		Missing(t, "Python websockets: %v", err)
	}
	return PythonPath
}

// nodeEnv finds node and the environment in which it can require('ws').
var nodeEnv = sync.OnceValues(func() ([]string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH")
	}
	env := os.Environ()
	if os.Getenv("NODE_PATH") == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		env = append(env, "NODE_PATH="+filepath.Join(cache, "wsecho", "npm", "node_modules"))
	}
	cmd := exec.Command(node, "-e", "require('ws')")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("node cannot require('ws') (NODE_PATH or ${XDG_CACHE_HOME:-~/.cache}/wsecho/npm; npm install ws@8, .ci/run installs it): %v: %s", err, bytes.TrimSpace(out))
	}
	return append([]string{node}, env...), nil
})

// Node returns the path of node and the environment to run it in, where
// require('ws') works: the test's environment, plus, when NODE_PATH is
// unset, NODE_PATH=${XDG_CACHE_HOME:-~/.cache}/wsecho/npm/node_modules (the
// folder .ci/run installs ws into). If node or ws is missing, Node ends the
// test through Missing. The caller owns the returned slice.
func Node(t testing.TB) (path string, env []string) {
	t.Helper()
	ne, err := nodeEnv()
	if err != nil {
		Missing(t, "Node ws: %v", err)
	}
	return ne[0], slices.Clone(ne[1:])
}

// Cert is a test certificate authority and a server certificate it signed
// for 127.0.0.1, ::1 and localhost, valid from an hour ago for a day.
type Cert struct {
	CAFile   string          // the CA certificate, PEM
	CertFile string          // the server certificate, PEM
	KeyFile  string          // the server certificate's key, PKCS #8 PEM
	Pool     *x509.CertPool  // trusts the CA
	TLS      tls.Certificate // the server certificate with its key
}

// NewCert makes a fresh Cert, with its files in a t.TempDir folder.
func NewCert(t testing.TB) Cert {
	t.Helper()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("test certificate: %v", err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "wsecho test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	check(err)
	ca, err := x509.ParseCertificate(caDER)
	check(err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	check(err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	check(err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	check(err)
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		check(os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	c := Cert{
		CAFile:   write("ca.pem", "CERTIFICATE", caDER),
		CertFile: write("cert.pem", "CERTIFICATE", leafDER),
		KeyFile:  write("key.pem", "PRIVATE KEY", keyDER),
		Pool:     x509.NewCertPool(),
		TLS:      tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key},
	}
	c.Pool.AddCert(ca)
	return c
}

// RefusedAddr returns a loopback host:port on which nothing listens: a
// port that was bound and closed again, so that a dial to it is refused.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
