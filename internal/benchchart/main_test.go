package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkEcho/conns=1/size=32/impl=xnet-2         	   59298	     23455 ns/op	   1.36 MB/s	     42000 rt/s	     240 B/op	       8 allocs/op
BenchmarkEcho/conns=1/size=32/impl=gorilla-2      	   49998	     21958 ns/op	   1.46 MB/s	     40000 rt/s	     520 B/op	       2 allocs/op
BenchmarkEcho/conns=1/size=32/impl=xnet-2         	   59298	     23455 ns/op	   1.36 MB/s	     46000 rt/s	     240 B/op	       8 allocs/op
BenchmarkEcho/conns=1/size=32/impl=xnet-2         	   59298	     23455 ns/op	   1.36 MB/s	     44000 rt/s	     240 B/op	       8 allocs/op
BenchmarkEcho/conns=1/size=4096/impl=gorilla-2    	   15350	     70051 ns/op	  58.47 MB/s	     14000 rt/s	   10456 B/op	      13 allocs/op
BenchmarkUnmask/size=32/impl=wsframe-2            	1000000	        10 ns/op
PASS
`

func TestRead(t *testing.T) {
	s := make(samples)
	if err := s.read(strings.NewReader(sample), "rt/s"); err != nil {
		t.Fatal(err)
	}
	p := s.medians()
	tests := []struct {
		k    key
		want float64
	}{
		{key{1, 32, "xnet"}, 44000}, // median of 42000, 46000, 44000
		{key{1, 32, "gorilla"}, 40000},
		{key{1, 4096, "gorilla"}, 14000},
	}
	for _, tc := range tests {
		if got := p[tc.k]; got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.k, got, tc.want)
		}
	}
	if len(p) != len(tests) {
		t.Errorf("got %d points, want %d (BenchmarkUnmask has no conns=)", len(p), len(tests))
	}
}

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		want key
		ok   bool
	}{
		{"BenchmarkEcho/conns=64/size=1048576/impl=tcp-2", key{64, 1 << 20, "tcp"}, true},
		{"BenchmarkEcho/conns=1/impl=xnet/size=32-8", key{1, 32, "xnet"}, true},
		{"BenchmarkEcho/conns=1/size=32", key{1, 32, ""}, false},
		{"BenchmarkEcho/conns=x/size=32/impl=xnet", key{}, false},
	}
	for _, tc := range tests {
		got, ok := parseName(tc.name)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseName(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRef(t *testing.T) {
	r, err := parseRef("gws:gorilla:1:32=1.5")
	if err != nil {
		t.Fatal(err)
	}
	p := points{{1, 32, "gorilla"}: 40000}
	if err := p.addRef(r); err != nil {
		t.Fatal(err)
	}
	if got := p[key{1, 32, "gws"}]; got != 60000 {
		t.Errorf("gws: got %v, want 60000", got)
	}
	r, err = parseRef("gws:gorilla:64:32=2")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.addRef(r); err == nil {
		t.Error("ref on a missing base point: no error")
	}
	for _, bad := range []string{"gws", "gws:gorilla:x:32=1", "gws:gorilla:1:32", "gws:gorilla:1:32=-1"} {
		if _, err := parseRef(bad); err == nil {
			t.Errorf("parseRef(%q): no error", bad)
		}
	}
}

// TestSVG checks that the chart is well-formed XML with one panel per
// connection count and a point per measured value.
func TestSVG(t *testing.T) {
	p := points{
		{1, 32, "xnet"}: 44000, {1, 32, "gorilla"}: 40000, {1, 4096, "xnet"}: 20000,
		{64, 32, "tcp"}: 90000, {64, 32, "other"}: 1,
	}
	var buf bytes.Buffer
	writeSVG(&buf, p, "rt/s")
	svg := buf.String()
	d := xml.NewDecoder(strings.NewReader(svg))
	counts := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	if counts["svg"] != 1 || counts["g"] != 2 || counts["circle"] != len(p) {
		t.Errorf("got %d svg, %d panels, %d points; want 1, 2, %d", counts["svg"], counts["g"], counts["circle"], len(p))
	}
	if !strings.Contains(svg, ">1.10x<") {
		t.Errorf("no ratio label 1.10x for xnet/gorilla at conns=1 size=32:\n%s", svg)
	}
}
