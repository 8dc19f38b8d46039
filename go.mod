module wsecho

go 1.26.0

require golang.org/x/net v0.62.0

require github.com/gorilla/websocket v1.5.3 // indirect
