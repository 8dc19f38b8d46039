// Benchchart draws an SVG chart of echo round trips per second against
// message size, one panel per connection count and one line per echo
// server, from the output of BenchmarkEcho.
//
// Usage:
//
//	go run ./internal/benchchart [-o BENCHMARKS.svg] [-metric rt/s] [-ref SPEC] [-table] FILE...
//
// Each FILE is `go test -bench` output (several runs of the same benchmark
// are fine: the chart shows their median). Benchmarks are grouped by the
// conns=, size= and impl= parts of their names. A -ref flag adds a line
// scaled from a measured one, for a server measured elsewhere:
// "gws:gorilla:64:4096=1.35,65536=3" draws "gws" at 1.35 times gorilla's
// median at 4096 bytes and 3 times at 65536 bytes, in the conns=64 panel.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("o", "BENCHMARKS.svg", "write the chart to `file` (- for stdout)")
	metric := flag.String("metric", "rt/s", "the benchmark `unit` to plot")
	var refs []ref
	flag.Func("ref", "add a `line` scaled from a measured one: NAME:BASE:CONNS:SIZE=RATIO[,SIZE=RATIO...] (repeatable)", func(s string) error {
		r, err := parseRef(s)
		if err == nil {
			refs = append(refs, r)
		}
		return err
	})
	table := flag.Bool("table", false, "also print a Markdown table of the medians and the ratios to gorilla and tcp")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: benchchart [-o file.svg] [-metric rt/s] [-ref spec] bench-output...")
		os.Exit(2)
	}
	if err := run(flag.Args(), *out, *metric, refs, *table); err != nil {
		fmt.Fprintln(os.Stderr, "benchchart:", err)
		os.Exit(1)
	}
}

func run(files []string, out, metric string, refs []ref, table bool) error {
	samples := make(samples)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = samples.read(f, metric)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(samples) == 0 {
		return fmt.Errorf("no benchmark with conns=, size=, impl= and a %s metric", metric)
	}
	points := samples.medians()
	if table {
		writeTable(os.Stdout, samples, metric)
	}
	for _, r := range refs {
		if err := points.addRef(r); err != nil {
			return err
		}
	}
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	writeSVG(bw, points, metric)
	return bw.Flush()
}

// key identifies one point of the chart.
type key struct {
	conns, size int
	impl        string
}

// samples holds every value read for each point.
type samples map[key][]float64

// read adds the values of metric from benchmark output lines such as
//
//	BenchmarkEcho/conns=1/size=32/impl=xnet-2  59298  23455 ns/op  42636 rt/s
//
// Lines that are not benchmark results, or lack the name parts or the
// metric, are skipped.
func (s samples) read(r io.Reader, metric string) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		k, ok := parseName(f[0])
		if !ok {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] != metric {
				continue
			}
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("bad value %q in %q", f[i], sc.Text())
			}
			s[k] = append(s[k], v)
		}
	}
	return sc.Err()
}

// parseName reads conns=, size= and impl= from a benchmark name, whose last
// part may end with the -GOMAXPROCS suffix.
func parseName(name string) (key, bool) {
	var k key
	var haveConns, haveSize bool
	for part := range strings.SplitSeq(name, "/") {
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		switch name {
		case "conns", "size":
			n, err := strconv.Atoi(trimProcs(value))
			if err != nil {
				return k, false
			}
			if name == "conns" {
				k.conns, haveConns = n, true
			} else {
				k.size, haveSize = n, true
			}
		case "impl":
			k.impl = trimProcs(value)
		}
	}
	return k, haveConns && haveSize && k.impl != ""
}

// trimProcs drops a trailing -N (the GOMAXPROCS suffix go test adds).
func trimProcs(s string) string {
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			return s[:i]
		}
	}
	return s
}

// points maps each point to the median of its samples.
type points map[key]float64

func (s samples) medians() points {
	p := make(points, len(s))
	for k, v := range s {
		p[k] = median(v)
	}
	return p
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ref is a line scaled from a measured one.
type ref struct {
	name, base string
	conns      int
	ratios     map[int]float64 // size -> ratio to base
}

func parseRef(s string) (ref, error) {
	f := strings.SplitN(s, ":", 4)
	if len(f) != 4 || f[0] == "" || f[1] == "" {
		return ref{}, errors.New("want NAME:BASE:CONNS:SIZE=RATIO[,SIZE=RATIO...]")
	}
	r := ref{name: f[0], base: f[1], ratios: make(map[int]float64)}
	var err error
	if r.conns, err = strconv.Atoi(f[2]); err != nil {
		return ref{}, fmt.Errorf("conns: %w", err)
	}
	for kv := range strings.SplitSeq(f[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		size, err1 := strconv.Atoi(k)
		ratio, err2 := strconv.ParseFloat(v, 64)
		if !ok || err1 != nil || err2 != nil || ratio <= 0 {
			return ref{}, fmt.Errorf("bad SIZE=RATIO %q", kv)
		}
		r.ratios[size] = ratio
	}
	return r, nil
}

func (p points) addRef(r ref) error {
	for size, ratio := range r.ratios {
		base, ok := p[key{r.conns, size, r.base}]
		if !ok {
			return fmt.Errorf("-ref %s: no %s point at conns=%d size=%d", r.name, r.base, r.conns, size)
		}
		p[key{r.conns, size, r.name}] = base * ratio
	}
	return nil
}

// Chart geometry, in SVG user units.
const (
	panelW, panelH = 420, 300
	marginL        = 70
	marginR        = 20
	marginT        = 50
	marginB        = 115
)

// colors of the known servers; others get grey.
var colors = map[string]string{
	"xnet":    "#d62728",
	"gorilla": "#1f77b4",
	"tcp":     "#555555",
	"gws":     "#2ca02c",
}

// implOrder lists the known servers first, in legend order.
var implOrder = []string{"xnet", "gorilla", "gws", "tcp"}

var labels = map[string]string{
	"xnet":    "wsecho (x/net + wire layer)",
	"gorilla": "gorilla reference",
	"tcp":     "plain TCP echo (ceiling)",
	"gws":     "gws (issue 6's ratios x gorilla; not measured here)",
}

// writeSVG writes the chart: one log-log panel per connection count.
func writeSVG(w io.Writer, p points, metric string) {
	var connsList, sizes []int
	impls := map[string]bool{}
	lo, hi := math.Inf(1), math.Inf(-1)
	for k, v := range p {
		if !slices.Contains(connsList, k.conns) {
			connsList = append(connsList, k.conns)
		}
		if !slices.Contains(sizes, k.size) {
			sizes = append(sizes, k.size)
		}
		impls[k.impl] = true
		if v > 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	sort.Ints(connsList)
	sort.Ints(sizes)
	var implList []string
	for _, i := range implOrder {
		if impls[i] {
			implList = append(implList, i)
		}
	}
	var others []string
	for i := range impls {
		if !slices.Contains(implOrder, i) {
			others = append(others, i)
		}
	}
	sort.Strings(others)
	implList = append(implList, others...)

	// The y axis spans whole decades around the data.
	yLo := math.Pow(10, math.Floor(math.Log10(max(lo, 1e-9))))
	yHi := math.Pow(10, math.Ceil(math.Log10(max(hi, 1e-9))))
	if yHi <= yLo {
		yHi = yLo * 10
	}
	width := marginL + len(connsList)*(panelW+marginL) - marginL + marginR
	height := marginT + panelH + marginB
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="20" font-size="15" font-weight="bold">Echo %s against message size (median of repeated runs; log-log)</text>`+"\n",
		marginL, esc(metric))

	xPos := func(i int) float64 {
		if len(sizes) == 1 {
			return panelW / 2
		}
		return 20 + float64(i)*(panelW-40)/float64(len(sizes)-1)
	}
	yPos := func(v float64) float64 {
		return panelH * (1 - (math.Log10(v)-math.Log10(yLo))/(math.Log10(yHi)-math.Log10(yLo)))
	}
	for pi, conns := range connsList {
		x0 := float64(marginL + pi*(panelW+marginL))
		fmt.Fprintf(w, `<g transform="translate(%.0f,%d)">`+"\n", x0, marginT)
		fmt.Fprintf(w, `<rect width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", panelW, panelH)
		fmt.Fprintf(w, `<text x="%d" y="-8" text-anchor="middle" font-weight="bold">conns=%d</text>`+"\n", panelW/2, conns)
		// Decade grid lines and labels.
		for d := yLo; d <= yHi*1.0001; d *= 10 {
			y := yPos(d)
			fmt.Fprintf(w, `<line x1="0" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", panelW, y, y)
			fmt.Fprintf(w, `<text x="-6" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", y, siNumber(d))
		}
		for i, size := range sizes {
			x := xPos(i)
			fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="0" y2="%d" stroke="#eee"/>`+"\n", x, x, panelH)
			fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, panelH+16, sizeName(size))
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">message size</text>`+"\n", panelW/2, panelH+34)
		if pi == 0 {
			fmt.Fprintf(w, `<text transform="translate(-55,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", panelH/2, esc(metric))
		}
		for _, impl := range implList {
			color := colors[impl]
			if color == "" {
				color = "#999999"
			}
			dash := ""
			if _, known := colors[impl]; !known || impl == "gws" {
				dash = ` stroke-dasharray="5,4"`
			}
			var pts []string
			for i, size := range sizes {
				v, ok := p[key{conns, size, impl}]
				if !ok || v <= 0 {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xPos(i), yPos(v)))
			}
			if len(pts) > 1 {
				fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
			}
			for i, size := range sizes {
				v, ok := p[key{conns, size, impl}]
				if !ok || v <= 0 {
					continue
				}
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s conns=%d size=%d: %s %s</title></circle>`+"\n",
					xPos(i), yPos(v), color, esc(impl), conns, size, strconv.FormatFloat(v, 'f', -1, 64), esc(metric))
				// Ours is labelled with its ratio to gorilla.
				if g, ok := p[key{conns, size, "gorilla"}]; ok && impl == "xnet" && g > 0 {
					fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s" font-size="11">%.2fx</text>`+"\n",
						xPos(i), yPos(v)+16, color, v/g)
				}
			}
		}
		fmt.Fprintln(w, `</g>`)
	}
	// Legend.
	ly := marginT + panelH + 52
	lx := marginL
	for _, impl := range implList {
		color := colors[impl]
		if color == "" {
			color = "#999999"
		}
		label := labels[impl]
		if label == "" {
			label = impl
		}
		if step := 40 + 7*len(label); lx > marginL && lx+step > width-marginR {
			lx, ly = marginL, ly+18 // next row
		}
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", lx, lx+20, ly, ly, color)
		fmt.Fprintf(w, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", lx+25, ly, esc(label))
		lx += 40 + 7*len(label)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#555">Labels under the red points: wsecho's ratio to gorilla. Dashed lines are scaled from a measured line (-ref), not measured.</text>`+"\n",
		marginL, ly+22)
	fmt.Fprintln(w, `</svg>`)
}

// sizeName writes a byte count as 32 B, 4 KiB, 1 MiB.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

// siNumber writes a power of ten as 100, 1k, 10k, 1M.
func siNumber(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// esc escapes text for SVG.
func esc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}

// writeTable prints, per connection count and size, the median of metric
// for each server with its run count, and ours (xnet) as a ratio to gorilla
// and to tcp. The paired column is the median of the ratios of ours to
// gorilla run by run: with interleaved runs (-count=1, repeated), the i-th
// result of each benchmark comes from the same round, so both saw the same
// load on the machine.
func writeTable(w io.Writer, s samples, metric string) {
	p := s.medians()
	var keys []key
	for k := range p {
		if k.impl == "xnet" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].conns != keys[j].conns {
			return keys[i].conns < keys[j].conns
		}
		return keys[i].size < keys[j].size
	})
	fmt.Fprintf(w, "| conns | size | ours %[1]s | gorilla %[1]s | tcp %[1]s | ours/gorilla | paired | ours/tcp | gorilla/tcp |\n", metric)
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	cell := func(k key) string {
		v, ok := p[k]
		if !ok {
			return "-"
		}
		if v >= 100 {
			return fmt.Sprintf("%.0f (n=%d)", v, len(s[k]))
		}
		return fmt.Sprintf("%.3g (n=%d)", v, len(s[k]))
	}
	ratio := func(a, b key) string {
		va, oka := p[a]
		vb, okb := p[b]
		if !oka || !okb || vb == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", va/vb)
	}
	for _, k := range keys {
		g, t := k, k
		g.impl, t.impl = "gorilla", "tcp"
		paired := "-"
		if a, b := s[k], s[g]; len(a) == len(b) && len(a) > 0 {
			r := make([]float64, len(a))
			for i := range a {
				r[i] = a[i] / b[i]
			}
			paired = fmt.Sprintf("%.2f", median(r))
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			k.conns, sizeName(k.size), cell(k), cell(g), cell(t), ratio(k, g), paired, ratio(k, t), ratio(g, t))
	}
}
