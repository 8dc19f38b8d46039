module wsecho

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	github.com/lxzan/gws v1.8.9
	golang.org/x/net v0.62.0
	golang.org/x/term v0.48.0
)

require (
	github.com/dolthub/maphash v0.1.0 // indirect
	github.com/klauspost/compress v1.17.9 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
