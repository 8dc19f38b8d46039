package server

import (
	"expvar"
	"math"
	"net/http"

	"golang.org/x/net/websocket"

	"wsecho/internal/wsframe"
)

// negotiate answers the client's permessage-deflate offers (RFC 7692) in
// the handshake response, which x/net writes from cfg.Header, and turns
// compression on in the wire layer when an offer was accepted.
func (h *Handler) negotiate(r *http.Request, cfg *websocket.Config, wc *wsframe.Conn) {
	if h.opts.DisableCompression {
		return
	}
	policy := wsframe.DeflatePolicy{ContextTakeover: h.opts.CompressContextTakeover}
	resp, d, ok := wsframe.AcceptDeflate(r.Header.Values(wsframe.ExtensionHeader), policy)
	if !ok {
		return
	}
	cfg.Header = http.Header{wsframe.ExtensionHeader: {resp}}
	wc.EnableDeflate(d)
	h.metrics.connsCompressed.Add(1)
}

// extensionAttrs returns the log attributes of the extension in force on
// wc: the response that negotiated it.
func extensionAttrs(wc *wsframe.Conn) []any {
	if d, ok := wc.Deflate(); ok {
		return []any{"extensions", d.String()}
	}
	return nil
}

// compressionCounts is what a connection has added to the metrics so far.
type compressionCounts wsframe.CompressionStats

// count adds to m what wc has compressed and inflated since the last call.
func (cs *compressionCounts) count(wc *wsframe.Conn, m *metrics) {
	if _, ok := wc.Deflate(); !ok {
		return
	}
	now := wc.CompressionStats()
	m.compressedIn.Add(now.MessagesIn - cs.MessagesIn)
	m.wireIn.Add(now.WireIn - cs.WireIn)
	m.inflatedIn.Add(now.InflatedIn - cs.InflatedIn)
	m.compressedOut.Add(now.MessagesOut - cs.MessagesOut)
	m.rawOut.Add(now.RawOut - cs.RawOut)
	m.wireOut.Add(now.WireOut - cs.WireOut)
	*cs = compressionCounts(now)
}

// appendCompression adds to a closing log line's attributes the bytes of
// compressed messages each way, on the wire and inflated, and the ratio of
// the two over both directions.
func appendCompression(attrs []any, wc *wsframe.Conn) []any {
	if _, ok := wc.Deflate(); !ok {
		return attrs
	}
	s := wc.CompressionStats()
	attrs = append(attrs, "compressed_in", s.WireIn, "inflated_in", s.InflatedIn,
		"compressed_out", s.WireOut, "deflated_out", s.RawOut)
	if raw := s.InflatedIn + s.RawOut; raw > 0 {
		attrs = append(attrs, "ratio", math.Round(1000*float64(s.WireIn+s.WireOut)/float64(raw))/1000)
	}
	return attrs
}

// publishCompression adds the metrics of permessage-deflate to m.vars.
func (m *metrics) publishCompression() {
	m.vars.Set("conns_compressed", &m.connsCompressed)
	m.vars.Set("compressed_messages_in", &m.compressedIn)
	m.vars.Set("compressed_bytes_in", &m.wireIn)
	m.vars.Set("inflated_bytes_in", &m.inflatedIn)
	m.vars.Set("compressed_messages_out", &m.compressedOut)
	m.vars.Set("deflated_bytes_out", &m.rawOut)
	m.vars.Set("compressed_bytes_out", &m.wireOut)
	m.vars.Set("compression_ratio", expvar.Func(func() any {
		raw := m.inflatedIn.Value() + m.rawOut.Value()
		if raw == 0 {
			return 0.0
		}
		return math.Round(1000*float64(m.wireIn.Value()+m.wireOut.Value())/float64(raw)) / 1000
	}))
}
