// Package wsmsg carries a message with its type through
// golang.org/x/net/websocket. x/net's Message codec tells text from binary
// only by the Go type it receives into, so a caller that echoes or prints
// whatever comes loses the type; Codec keeps it.
package wsmsg

import "golang.org/x/net/websocket"

// Message is one message and its type.
type Message struct {
	Type byte   // websocket.TextFrame or websocket.BinaryFrame
	Data []byte // from Codec.Receive, a fresh slice from x/net (wsecho itself reads through wsframe.Conn.ReadMessage)
}

// Codec sends and receives *Message values with their type.
var Codec = websocket.Codec{
	Marshal: func(v any) ([]byte, byte, error) {
		m := v.(*Message)
		return m.Data, m.Type, nil
	},
	Unmarshal: func(data []byte, typ byte, v any) error {
		m := v.(*Message)
		m.Type, m.Data = typ, data
		return nil
	},
}
