module wsecho

go 1.26.0

require (
	github.com/gorilla/websocket v1.5.3
	golang.org/x/net v0.62.0
	golang.org/x/term v0.48.0
)

require golang.org/x/sys v0.50.0 // indirect
