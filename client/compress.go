package client

import (
	"strconv"

	"wsecho/internal/wsframe"
)

// Compression returns the permessage-deflate parameters the server
// accepted (RFC 7692), such as "permessage-deflate;
// server_no_context_takeover", and whether compression is in force. It is
// never in force unless Options.Compress offered it.
func (c *Conn) Compression() (string, bool) {
	d, ok := c.wire.Deflate()
	if !ok {
		return "", false
	}
	return d.String(), true
}

// wireSize returns the payload size on the wire of the message just read,
// and whether it was compressed. Call it from the reading goroutine.
func (c *Conn) wireSize() (int64, bool) { return c.wire.LastCompressed() }

// compressionNote is what the connect line says about compression: the
// negotiated parameters, or that the server declined the offer.
func compressionNote(c *Conn) string {
	if !c.opts.Compress {
		return ""
	}
	if params, ok := c.Compression(); ok {
		return " (" + params + ")"
	}
	return " (compression declined)"
}

// wireNote is what -v adds to a message's size: its size on the wire, when
// it came compressed.
func wireNote(wire int64, compressed bool) string {
	if !compressed {
		return ""
	}
	return ", " + strconv.FormatInt(wire, 10) + " on the wire"
}

// offerDeflate adds the permessage-deflate offer to a handshake's headers,
// as Chrome sends it.
func offerDeflate(opts Options, hdr map[string][]string) {
	if opts.Compress {
		hdr[wsframe.ExtensionHeader] = []string{wsframe.DeflateOffer}
	}
}
