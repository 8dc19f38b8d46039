// A third-party WebSocket client for wsecho's interop tests, on Node's ws
// library (version 8, found through NODE_PATH).
//
// Usage: node client.js URL [CAFILE]
//
// It connects to the echo server at URL (ws:// or wss://; with CAFILE, the
// server's certificate must chain to it) and checks, on one connection: a
// text, a binary and an empty message, 1 MiB, a text message sent in three
// fragments, and a ping's pong; then it closes with 1000 and checks that
// the server echoes the code. A second connection sends one message and
// closes with 4000. It prints "ok node CHECKS" as its last line, or
// "FAIL ..." and exits with status 1.
//
// The environment variable WSECHO_DEFLATE sets permessage-deflate (RFC
// 7692): unset, ws's default offer; "off", no offer; "takeover=on|off,
// bits=N" (N 8-15), an offer of server_max_window_bits=N and
// client_max_window_bits=N, with server_no_context_takeover and
// client_no_context_takeover when takeover is off, compressing every
// message (threshold 0). Then the server must accept it: the script prints
// "deflate: RESPONSE" with the server's Sec-WebSocket-Extensions, sends a
// compressible JSON-like message too, and adds the checks "json" and
// "deflate".
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const WebSocket = require('ws');

const [url, cafile] = process.argv.slice(2);
const opts = { handshakeTimeout: 10000, maxPayload: 64 << 20 };
if (cafile) opts.ca = fs.readFileSync(cafile);
const deflate = process.env.WSECHO_DEFLATE;
const deflateOn = deflate && deflate !== 'off';
if (deflate === 'off') {
  opts.perMessageDeflate = false;
} else if (deflateOn) {
  const kv = Object.fromEntries(deflate.split(',').map((s) => s.split('=')));
  const bits = Number(kv.bits);
  // With takeover on, neither option is set: ws would reject the other
  // end's no_context_takeover even though RFC 7692 lets it add one.
  const noTakeover = kv.takeover === 'off' ? true : undefined;
  opts.perMessageDeflate = {
    serverNoContextTakeover: noTakeover,
    clientNoContextTakeover: noTakeover,
    serverMaxWindowBits: bits,
    clientMaxWindowBits: bits,
    threshold: 0,
  };
}
let response = null; // the server's Sec-WebSocket-Extensions

// jsonTicks returns n characters of JSON-like price ticks.
function jsonTicks(n) {
  let s = '';
  for (let seq = 0; s.length < n; seq++) {
    s += `{"type":"tick","symbol":"BTC-USD","price":${43000 + (seq * 7) % 500}.${String(seq % 100).padStart(2, '0')},"seq":${seq}}\n`;
  }
  return s.slice(0, n);
}

function fail(msg) {
  console.log('FAIL node: ' + msg);
  process.exit(1);
}
setTimeout(() => fail('timed out'), 20000).unref();

// session opens a connection and returns helpers that await its events.
function session() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.on('upgrade', (res) => { response = res.headers['sec-websocket-extensions'] || ''; });
    const queue = [];
    let waiter = null;
    const push = (ev) => {
      if (waiter) { const w = waiter; waiter = null; w(ev); } else queue.push(ev);
    };
    ws.on('message', (data, isBinary) => push({ kind: 'message', data, isBinary }));
    ws.on('pong', (data) => push({ kind: 'pong', data }));
    ws.on('close', (code, reason) => push({ kind: 'close', code, reason: reason.toString() }));
    ws.on('error', (err) => { push({ kind: 'error', err }); reject(err); });
    ws.on('open', () => resolve({
      ws,
      next: () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiter = r; }),
    }));
  });
}

async function expect(s, name, want, binary) {
  const ev = await s.next();
  if (ev.kind !== 'message') fail(`${name}: got ${ev.kind} ${ev.code || ev.err || ''}, want a message`);
  if (ev.isBinary !== binary) fail(`${name}: got binary=${ev.isBinary}, want ${binary}`);
  if (!Buffer.from(ev.data).equals(Buffer.from(want))) fail(`${name}: echo differs (${ev.data.length} bytes, want ${want.length})`);
}

async function expectClose(s, code) {
  const ev = await s.next();
  if (ev.kind !== 'close' || ev.code !== code) fail(`close ${code}: got ${ev.kind} ${ev.code}`);
}

async function main() {
  const checks = [];
  let s = await session();
  if (deflateOn) {
    console.log('deflate: ' + response);
    if (!response.startsWith('permessage-deflate')) fail(`server did not accept permessage-deflate: ${response}`);
  }
  const table = [
    ['text', 'hello, wsecho', false],
    ['binary', Buffer.from([0, 1, 0xfe, 0xff]), true],
    ['empty', '', false],
    ['1MiB', crypto.randomBytes(1 << 20), true],
  ];
  if (deflateOn) table.push(['json', jsonTicks(20000), false]);
  for (const [name, msg, binary] of table) {
    s.ws.send(msg, { binary });
    await expect(s, name, msg, binary);
    checks.push(name);
  }
  // One text message in three frames.
  s.ws.send('frag', { binary: false, fin: false });
  s.ws.send('ment', { binary: false, fin: false });
  s.ws.send('ed', { binary: false, fin: true });
  await expect(s, 'fragments', 'fragmented', false);
  checks.push('fragments');
  s.ws.ping('interop-ping');
  const ev = await s.next();
  if (ev.kind !== 'pong' || ev.data.toString() !== 'interop-ping') fail(`pong: got ${ev.kind} ${ev.data}`);
  checks.push('pong');
  s.ws.close(1000, 'bye');
  await expectClose(s, 1000);
  checks.push('close=1000');

  s = await session();
  s.ws.send('last');
  await expect(s, 'text', 'last', false);
  s.ws.close(4000, 'app');
  await expectClose(s, 4000);
  checks.push('close=4000');
  if (deflateOn) checks.push('deflate');
  console.log('ok node ' + checks.join(' '));
}

main().catch((err) => fail(String(err && err.stack || err)));
