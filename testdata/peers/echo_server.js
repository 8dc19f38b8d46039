// A WebSocket echo server on Node's ws library (npm ws@8), for wsecho's
// client tests.
//
// Run it with node, with ws on NODE_PATH:
//
//   node echo_server.js [PORT [CERT KEY]]
//
// It listens on 127.0.0.1 (port 0 unless given), with TLS when a PEM
// certificate and key are given, prints "listening on ws://127.0.0.1:PORT/"
// (wss:// with TLS) as its first line, and exits when its standard input
// closes.
//
// On every connection it first sends a fragmented text message ("hello,
// fragmented world" in three fragments), a binary message (00 01 fe ff) and
// a ping ("peer-ping"); when the pong comes back it sends "pong received:
// peer-ping". Then it echoes every message with its type, except two text
// commands:
//
//   close CODE [REASON]   close the connection with CODE and REASON
//   header NAME           answer "header NAME: VALUE" from the handshake
//   subprotocol           answer "subprotocol: NAME" (the one chosen, or none)
//
// It accepts the subprotocol "chat" when the client offers it. With
// WSECHO_PEER_PLAIN=1 in the environment it sends no greeting: it only
// echoes.
'use strict';

const fs = require('fs');
const https = require('https');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const [certFile, keyFile] = process.argv.slice(3, 5);
const handleProtocols = (protocols) => (protocols.has('chat') ? 'chat' : false);
let wss;
if (certFile) {
  const server = https.createServer({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
  wss = new WebSocketServer({ server, handleProtocols });
  server.listen(port, '127.0.0.1', () => {
    console.log(`listening on wss://127.0.0.1:${server.address().port}/`);
  });
} else {
  wss = new WebSocketServer({ host: '127.0.0.1', port, handleProtocols });
  wss.on('listening', () => {
    console.log(`listening on ws://127.0.0.1:${wss.address().port}/`);
  });
}

wss.on('connection', (ws, req) => {
  if (process.env.WSECHO_PEER_PLAIN === '1') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
    return;
  }
  ws.send('hello, ', { fin: false });
  ws.send('fragmented ', { fin: false });
  ws.send('world', { fin: true });
  ws.send(Buffer.from([0x00, 0x01, 0xfe, 0xff]), { binary: true });
  ws.ping('peer-ping');
  ws.on('pong', (data) => ws.send(`pong received: ${data}`));
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const text = data.toString();
      if (text.startsWith('close ')) {
        const rest = text.slice('close '.length);
        const i = rest.indexOf(' ');
        const code = Number(i < 0 ? rest : rest.slice(0, i));
        ws.close(code, i < 0 ? '' : rest.slice(i + 1));
        return;
      }
      if (text.startsWith('header ')) {
        const name = text.slice('header '.length);
        ws.send(`header ${name}: ${req.headers[name.toLowerCase()] || ''}`);
        return;
      }
      if (text === 'subprotocol') {
        ws.send(`subprotocol: ${ws.protocol || 'none'}`);
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {});
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
