// A third-party client for wsecho's behaviours (issue 13), on Node's ws
// library (version 8, found through NODE_PATH).
//
// Usage: node behaviours.js BASE
//
// BASE is the server's ws://HOST:PORT. It checks, each on its own
// connection to /echo: a fragmented echo (fragment=3 with a ping between
// fragments) arrives as one message, and so does a longer one on the
// compressed connection (ws offers permessage-deflate by default; the server
// compresses it, then splits it); the greeting comes first; after=1 with
// close=1013 ends with that code and reason; after=1 with drop=1 ends with
// 1006 (no Close frame); push= sends padded ticks between the echoes. It
// prints "ok node CHECKS" as its last line, or "FAIL ..." and exits 1.
'use strict';

const WebSocket = require('ws');

const base = process.argv[2];

function fail(msg) {
  console.log('FAIL node: ' + msg);
  process.exit(1);
}
setTimeout(() => fail('timed out'), 20000).unref();

// session opens a connection to path and returns a function that awaits
// its next event: a message or the close.
function session(path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(base + path, { handshakeTimeout: 10000 });
    const queue = [];
    let waiter = null;
    const push = (ev) => {
      if (waiter) { const w = waiter; waiter = null; w(ev); } else queue.push(ev);
    };
    ws.on('message', (data, isBinary) => push({ kind: 'message', data: data.toString(), isBinary }));
    ws.on('close', (code, reason) => push({ kind: 'close', code, reason: reason.toString() }));
    ws.on('error', (err) => { push({ kind: 'error', err }); reject(err); });
    ws.on('open', () => resolve({
      ws,
      next: () => queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => { waiter = r; }),
    }));
  });
}

async function expectMessage(s, name, want) {
  const ev = await s.next();
  if (ev.kind !== 'message' || ev.data !== want) fail(`${name}: got ${ev.kind} ${ev.data || ev.code}, want ${want}`);
}

async function main() {
  const checks = [];
  let s = await session('/echo?fragment=3&ping-between=1');
  const msg = 'hello, fragments: é€😀';
  s.ws.send(msg);
  await expectMessage(s, 'fragment', msg);
  s.ws.close();
  checks.push('fragment');

  s = await session('/echo?fragment=3&ping-between=1');
  if (!s.ws.extensions.includes('permessage-deflate')) fail(`fragment_compressed: compression not negotiated: ${s.ws.extensions}`);
  const long = 'compressed, then split: é€😀 '.repeat(10);
  s.ws.send(long);
  await expectMessage(s, 'fragment_compressed', long);
  s.ws.close();
  checks.push('fragment_compressed');

  s = await session('/echo?greeting=welcome');
  s.ws.send('a');
  await expectMessage(s, 'greeting', 'welcome');
  await expectMessage(s, 'greeting', 'a');
  s.ws.close();
  checks.push('greeting');

  s = await session('/echo?after=1&close=1013&reason=later');
  s.ws.send('a');
  await expectMessage(s, 'close', 'a');
  let ev = await s.next();
  if (ev.kind !== 'close' || ev.code !== 1013 || ev.reason !== 'later') fail(`close: got ${ev.kind} ${ev.code} ${ev.reason}`);
  checks.push('close=1013');

  s = await session('/echo?after=1&drop=1');
  s.ws.send('a');
  await expectMessage(s, 'drop', 'a');
  ev = await s.next();
  if (ev.kind !== 'close' || ev.code !== 1006) fail(`drop: got ${ev.kind} ${ev.code}`);
  checks.push('drop');

  s = await session('/echo?push=100ms&push-size=300');
  let pushes = 0;
  let echoes = 0;
  while (pushes < 3 || echoes < 1) {
    ev = await s.next();
    if (ev.kind !== 'message') fail(`push: got ${ev.kind} ${ev.code}`);
    if (ev.data === 'mine') { echoes++; continue; }
    const tick = JSON.parse(ev.data);
    if (ev.data.length !== 300 || tick.high < tick.low) fail(`push: ${ev.data.length} bytes ${ev.data.slice(0, 60)}`);
    if (++pushes === 1) s.ws.send('mine');
  }
  s.ws.close();
  checks.push('push');
  console.log('ok node ' + checks.join(' '));
}

main().catch((err) => fail(String(err && err.stack || err)));
