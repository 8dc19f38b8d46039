package wsframe

import (
	"errors"
	"strconv"
	"strings"
)

// This file negotiates permessage-deflate (RFC 7692, Sections 5-7) from the
// Sec-WebSocket-Extensions header fields: pure functions of header values,
// used by the server to answer an offer and by the client to check the
// server's answer.

// ExtensionHeader is the opening handshake's extension header field
// (RFC 6455, Section 9.1).
const ExtensionHeader = "Sec-WebSocket-Extensions"

// PerMessageDeflate is the extension's name (RFC 7692, Section 7).
const PerMessageDeflate = "permessage-deflate"

// Window sizes in bits of the LZ77 sliding window (RFC 7692, Section
// 7.1.2): 8 to 15; 15 (32 KiB) when none was negotiated.
const (
	MinWindowBits = 8
	MaxWindowBits = 15
)

// Deflate is what a permessage-deflate negotiation settled, as both ends
// see it. The zero value is not a negotiation; use the fields of a
// Deflate returned by the functions below.
type Deflate struct {
	// ServerNoContextTakeover: the server resets its compressor for every
	// message (Section 7.1.1.1).
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the client resets its compressor for every
	// message (Section 7.1.1.2).
	ClientNoContextTakeover bool
	// ServerMaxWindowBits bounds how far back the server's compressor may
	// refer (Section 7.1.2.1); 15 when not negotiated.
	ServerMaxWindowBits int
	// ClientMaxWindowBits bounds how far back the client's compressor may
	// refer (Section 7.1.2.2); 15 when not negotiated.
	ClientMaxWindowBits int
}

// String returns d as the parameters of a Sec-WebSocket-Extensions
// response, such as "permessage-deflate; server_no_context_takeover".
func (d Deflate) String() string {
	var b strings.Builder
	b.WriteString(PerMessageDeflate)
	if d.ServerNoContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if d.ClientNoContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if d.ServerMaxWindowBits != 0 && d.ServerMaxWindowBits != MaxWindowBits {
		b.WriteString("; server_max_window_bits=" + strconv.Itoa(d.ServerMaxWindowBits))
	}
	if d.ClientMaxWindowBits != 0 && d.ClientMaxWindowBits != MaxWindowBits {
		b.WriteString("; client_max_window_bits=" + strconv.Itoa(d.ClientMaxWindowBits))
	}
	return b.String()
}

// Sender returns how the end in role compresses: whether it keeps its
// compressor's context across messages, and its window in bits.
func (d Deflate) Sender(role Role) (takeover bool, windowBits int) {
	if role == Server {
		return !d.ServerNoContextTakeover, windowOr15(d.ServerMaxWindowBits)
	}
	return !d.ClientNoContextTakeover, windowOr15(d.ClientMaxWindowBits)
}

// Receiver reports whether the end in role must keep its inflater's window
// across messages: whether the peer's compressor keeps its context.
func (d Deflate) Receiver(role Role) (takeover bool) {
	if role == Server {
		return !d.ClientNoContextTakeover
	}
	return !d.ServerNoContextTakeover
}

func windowOr15(bits int) int {
	if bits == 0 {
		return MaxWindowBits
	}
	return bits
}

// ExtensionParam is one parameter of an extension: Value is "" for a
// parameter without a value, and HasValue tells it from an empty value.
type ExtensionParam struct {
	Name, Value string
	HasValue    bool
}

// Extension is one element of a Sec-WebSocket-Extensions list: an
// extension's name and its parameters in order.
type Extension struct {
	Name   string
	Params []ExtensionParam
}

// errExtensionSyntax is a Sec-WebSocket-Extensions value that does not
// follow RFC 6455, Section 9.1.
var errExtensionSyntax = errors.New("malformed " + ExtensionHeader + " header")

// ParseExtensions parses the values of Sec-WebSocket-Extensions header
// fields into a list of extensions (RFC 6455, Section 9.1):
//
//	extension      = token *( ";" extension-param )
//	extension-param = token [ "=" (token | quoted-string) ]
//
// A quoted value must be a token once unescaped. Several fields are one
// list, as if joined by commas; empty elements are skipped (RFC 7230,
// Section 7). Names are compared case-insensitively and returned in lower
// case. On a syntax error it returns the extensions before the bad element
// and an error.
func ParseExtensions(values []string) ([]Extension, error) {
	var exts []Extension
	for _, v := range values {
		p := extParser{s: v}
		for {
			p.space()
			if p.done() {
				break
			}
			if p.peek() == ',' {
				p.i++
				continue
			}
			e, err := p.extension()
			if err != nil {
				return exts, err
			}
			p.space()
			if !p.done() && p.peek() != ',' {
				return exts, errExtensionSyntax
			}
			exts = append(exts, e)
		}
	}
	return exts, nil
}

type extParser struct {
	s string
	i int
}

func (p *extParser) done() bool { return p.i >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.i] }

func (p *extParser) space() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

func (p *extParser) token() string {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *extParser) extension() (Extension, error) {
	name := p.token()
	if name == "" {
		return Extension{}, errExtensionSyntax
	}
	e := Extension{Name: strings.ToLower(name)}
	for {
		p.space()
		if p.done() || p.peek() != ';' {
			return e, nil
		}
		p.i++
		p.space()
		param := ExtensionParam{Name: strings.ToLower(p.token())}
		if param.Name == "" {
			return e, errExtensionSyntax
		}
		p.space()
		if !p.done() && p.peek() == '=' {
			p.i++
			p.space()
			v, err := p.value()
			if err != nil {
				return e, err
			}
			param.Value, param.HasValue = v, true
		}
		e.Params = append(e.Params, param)
	}
}

// value reads a token or a quoted-string whose content is a token.
func (p *extParser) value() (string, error) {
	if p.done() || p.peek() != '"' {
		v := p.token()
		if v == "" {
			return "", errExtensionSyntax
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for {
		if p.done() {
			return "", errExtensionSyntax
		}
		ch := p.peek()
		p.i++
		switch ch {
		case '"':
			v := b.String()
			if v == "" || strings.IndexFunc(v, func(r rune) bool { return r > 0x7f || !isTokenChar(byte(r)) }) >= 0 {
				return "", errExtensionSyntax
			}
			return v, nil
		case '\\':
			if p.done() {
				return "", errExtensionSyntax
			}
			ch = p.peek()
			p.i++
		}
		b.WriteByte(ch)
	}
}

// isTokenChar reports whether c may appear in a token (RFC 7230, Section
// 3.2.6).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// deflateParams is one permessage-deflate offer or response, checked for
// unknown and repeated parameters and for bad values.
type deflateParams struct {
	serverNoTakeover, clientNoTakeover bool
	serverBits                         int // 0: absent
	clientBits                         int // 0: absent; -1: present with no value (offers only)
}

// parseDeflate checks the parameters of one permessage-deflate element
// (RFC 7692, Section 7): each known, at most once, with a valid value. In
// an offer client_max_window_bits may come without a value; in a response
// it needs one.
func parseDeflate(params []ExtensionParam, offer bool) (deflateParams, error) {
	var d deflateParams
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.Name] {
			return d, errors.New("parameter " + p.Name + " given twice")
		}
		seen[p.Name] = true
		switch p.Name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.HasValue {
				return d, errors.New("parameter " + p.Name + " takes no value")
			}
			if p.Name == "server_no_context_takeover" {
				d.serverNoTakeover = true
			} else {
				d.clientNoTakeover = true
			}
		case "server_max_window_bits", "client_max_window_bits":
			bits := -1
			if p.HasValue {
				bits = parseWindowBits(p.Value)
				if bits == 0 {
					return d, errors.New("parameter " + p.Name + " has invalid value " + strconv.Quote(p.Value))
				}
			} else if !offer || p.Name == "server_max_window_bits" {
				return d, errors.New("parameter " + p.Name + " needs a value")
			}
			if p.Name == "server_max_window_bits" {
				d.serverBits = bits
			} else {
				d.clientBits = bits
			}
		default:
			return d, errors.New("unknown parameter " + p.Name)
		}
	}
	return d, nil
}

// parseWindowBits returns the value of a max_window_bits parameter: a
// decimal 8-15 without leading zeros (RFC 7692, Section 7.1.2), or 0.
func parseWindowBits(s string) int {
	if len(s) == 0 || len(s) > 2 || s[0] < '1' || s[0] > '9' || (len(s) == 2 && (s[1] < '0' || s[1] > '9')) {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < MinWindowBits || n > MaxWindowBits {
		return 0
	}
	return n
}

// DeflatePolicy is a server's choice for permessage-deflate.
type DeflatePolicy struct {
	// ContextTakeover keeps the compression context across messages in
	// both directions: a better ratio for small similar messages, for
	// about 1 MB (the server's compressor) and 32 KiB (the client's
	// window) per connection. If false (the default), the server answers
	// with server_no_context_takeover and client_no_context_takeover, and
	// an idle connection holds no compression state.
	ContextTakeover bool
}

// AcceptDeflate answers the permessage-deflate offers in the values of a
// request's Sec-WebSocket-Extensions fields (RFC 7692, Section 5): it
// accepts the first offer it can honour and returns the response's value
// and what was settled. It declines (ok false) when there is no acceptable
// offer: a header it cannot parse, or only offers with unknown or repeated
// parameters or invalid values, which RFC 7692 Section 7 tells a server to
// decline rather than fail. Offers of other extensions are never accepted.
func AcceptDeflate(values []string, policy DeflatePolicy) (response string, d Deflate, ok bool) {
	exts, err := ParseExtensions(values)
	if err != nil {
		return "", Deflate{}, false // the list cannot be trusted past the error
	}
	for _, e := range exts {
		if e.Name != PerMessageDeflate {
			continue
		}
		o, err := parseDeflate(e.Params, true)
		if err != nil {
			continue // decline this offer, try the next (Section 5.1)
		}
		d = Deflate{
			// Section 7.1.1.1: a server may always add it, and must
			// answer it when offered.
			ServerNoContextTakeover: o.serverNoTakeover || !policy.ContextTakeover,
			// Section 7.1.1.2: a server may always add it.
			ClientNoContextTakeover: o.clientNoTakeover || !policy.ContextTakeover,
			// Section 7.1.2.1: the same value as offered, honoured by the
			// compressor; without an offer, 15.
			ServerMaxWindowBits: windowOr15(o.serverBits),
			// Section 7.1.2.2: our inflater reads any window, so a
			// client's value is taken as it is and none is asked for.
			ClientMaxWindowBits: MaxWindowBits,
		}
		if o.clientBits > 0 {
			d.ClientMaxWindowBits = o.clientBits
		}
		resp := d.String() // window bits of 15 left out
		if o.serverBits == MaxWindowBits {
			// Section 7.1.2.1: an accepted server_max_window_bits is
			// answered, even with the default value.
			resp += "; server_max_window_bits=15"
		}
		return resp, d, true
	}
	return "", Deflate{}, false
}

// DeflateOffer is the offer a client sends, as Chrome does: compression
// with any window on either side, and the server may limit the client's
// window (RFC 7692, Section 7.1.2.2).
const DeflateOffer = PerMessageDeflate + "; client_max_window_bits"

// CheckDeflateResponse checks the server's Sec-WebSocket-Extensions
// response to DeflateOffer (RFC 7692, Section 7) and returns what was
// settled; ok is false when the server declined. An error means the client
// must fail the connection: an extension that was not offered, more than
// one, or a permessage-deflate response with an unknown or repeated
// parameter or an invalid value.
func CheckDeflateResponse(values []string) (d Deflate, ok bool, err error) {
	exts, err := ParseExtensions(values)
	if err != nil {
		return Deflate{}, false, err
	}
	switch {
	case len(exts) == 0:
		return Deflate{}, false, nil
	case len(exts) > 1:
		return Deflate{}, false, errors.New("server accepted more than one extension")
	case exts[0].Name != PerMessageDeflate:
		return Deflate{}, false, errors.New("server accepted extension " + strconv.Quote(exts[0].Name) + ", which was not offered")
	}
	r, err := parseDeflate(exts[0].Params, false)
	if err != nil {
		return Deflate{}, false, errors.New(PerMessageDeflate + " response: " + err.Error())
	}
	return Deflate{
		ServerNoContextTakeover: r.serverNoTakeover,
		ClientNoContextTakeover: r.clientNoTakeover,
		ServerMaxWindowBits:     windowOr15(r.serverBits),
		ClientMaxWindowBits:     windowOr15(r.clientBits),
	}, true, nil
}
