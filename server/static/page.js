// wsecho's browser client: plain JavaScript, no build step.
//
// The WebSocket URL comes from the page's own location: ws: for http:,
// wss: for https:, the same host and port, and the path "echo" next to the
// page (/echo when the page is served at /).
//
// With ?selftest=1 the page runs a self-test against the echo endpoint and
// writes PASS or "FAIL: reason" into #result. While it runs, a hidden image
// (selftest/wait?id=...) holds the page's load event, and the page releases
// it with POST selftest/done?id=... once #result is written, so a headless
// browser that dumps the DOM at load (chromium --dump-dom) sees the result.
// Without those endpoints the self-test still runs and shows its result.
// With &deflate=1 it also checks that the browser and the server
// negotiated permessage-deflate (RFC 7692), so that the echoes went both
// ways compressed; the page logs the negotiated extensions on every open.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $('state'), url: $('url'), connect: $('connect'), disconnect: $('disconnect'),
    form: $('send'), text: $('text'), sendText: $('send-text'), sendBinary: $('send-binary'),
    log: $('log'), clear: $('clear'), result: $('result'),
  };

  const echoURL = (() => {
    const u = new URL('echo', location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.search = '';
    u.hash = '';
    return u.href;
  })();
  ui.url.textContent = echoURL;

  // Close codes (RFC 6455, Section 7.4.1).
  const closeNames = {
    1000: 'normal closure', 1001: 'going away', 1002: 'protocol error',
    1003: 'unsupported data', 1005: 'no status', 1006: 'abnormal closure',
    1007: 'invalid payload', 1008: 'policy violation', 1009: 'message too big',
    1010: 'mandatory extension', 1011: 'internal error', 1012: 'service restart',
    1013: 'try again later', 1014: 'bad gateway', 1015: 'TLS handshake failed',
  };
  const describeClose = (ev) => {
    const name = closeNames[ev.code] ? ` (${closeNames[ev.code]})` : '';
    const reason = ev.reason ? `, reason ${JSON.stringify(ev.reason)}` : ', no reason';
    return `code ${ev.code}${name}${reason}${ev.wasClean ? '' : ', not clean'}`;
  };

  // --- the log -------------------------------------------------------------

  const maxLogEntries = 500;
  const utf8 = new TextEncoder();

  const formatSize = (n) => n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB (${n} B)`;

  const hex = (bytes, max) => {
    const shown = Array.from(bytes.subarray(0, max), (b) => b.toString(16).padStart(2, '0'));
    return shown.join(' ') + (bytes.length > max ? ' …' : '');
  };

  // describe returns the type, size and a short preview of a message.
  const describe = (data) => {
    if (typeof data === 'string') {
      const size = utf8.encode(data).length;
      const preview = data.length > 120 ? data.slice(0, 120) + '…' : data;
      return { type: 'text', size: formatSize(size), preview: JSON.stringify(preview) };
    }
    const bytes = new Uint8Array(data);
    return { type: 'binary', size: formatSize(bytes.length), preview: hex(bytes, 16) };
  };

  // log appends one line: kind is sent, received, event or error; msg, when
  // given, is the message sent or received (a string or an ArrayBuffer).
  const log = (kind, text, msg) => {
    const nearBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
    const li = document.createElement('li');
    li.className = kind;
    const add = (cls, s) => {
      const span = document.createElement('span');
      span.className = cls;
      span.textContent = s;
      li.append(span);
    };
    add('time', new Date().toLocaleTimeString([], { hour12: false }));
    add('kind', { sent: '→ sent', received: '← recv', event: '• event', error: '! error' }[kind]);
    if (msg !== undefined) {
      const d = describe(msg);
      add('type', d.type);
      add('size', d.size);
      add('text', d.preview);
    } else {
      add('text', text);
    }
    ui.log.append(li);
    while (ui.log.childElementCount > maxLogEntries) {
      ui.log.firstElementChild.remove();
    }
    if (nearBottom) {
      ui.log.scrollTop = ui.log.scrollHeight;
    }
  };

  ui.clear.addEventListener('click', () => ui.log.replaceChildren());

  // --- the interactive connection -----------------------------------------

  let ws = null;

  const setState = (state, label) => {
    ui.state.dataset.state = state;
    ui.state.textContent = label;
    const open = state === 'open';
    ui.connect.disabled = state !== 'closed';
    ui.disconnect.disabled = state === 'closed';
    ui.sendText.disabled = !open;
    ui.sendBinary.disabled = !open;
  };

  const connect = () => {
    if (ws) {
      return;
    }
    log('event', `connecting to ${echoURL}`);
    setState('connecting', 'connecting…');
    const conn = new WebSocket(echoURL);
    conn.binaryType = 'arraybuffer';
    conn.onopen = () => {
      log('event', conn.extensions ? `open, extensions: ${conn.extensions}` : 'open');
      setState('open', 'open');
      ui.text.focus();
    };
    conn.onmessage = (ev) => log('received', '', ev.data);
    conn.onerror = () => log('error', 'the connection failed (the browser gives no details; see the close code)');
    conn.onclose = (ev) => {
      log('event', `closed: ${describeClose(ev)}`);
      if (ws === conn) {
        ws = null;
      }
      setState('closed', 'disconnected');
    };
    ws = conn;
  };

  const send = (data) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      log('error', 'not connected');
      return;
    }
    ws.send(data);
    log('sent', '', data instanceof Uint8Array ? data.buffer : data);
  };

  ui.connect.addEventListener('click', connect);
  ui.disconnect.addEventListener('click', () => {
    if (ws) {
      setState('closing', 'closing…');
      ws.close(1000, 'bye');
    }
  });
  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send(ui.text.value);
  });
  ui.sendBinary.addEventListener('click', () => send(utf8.encode(ui.text.value)));

  // --- the self-test ------------------------------------------------------

  // Receiver turns a WebSocket's events into promises: next() resolves with
  // the next message, and rejects once the connection has closed.
  class Receiver {
    constructor(conn) {
      this.queue = [];
      this.waiting = null;
      this.closed = null;
      this.opened = new Promise((resolve, reject) => {
        conn.addEventListener('open', resolve);
        conn.addEventListener('close', (ev) => reject(new Error(`connect ${echoURL}: closed: ${describeClose(ev)}`)));
      });
      this.closing = new Promise((resolve) => {
        conn.addEventListener('close', (ev) => {
          this.closed = ev;
          resolve(ev);
          if (this.waiting) {
            this.waiting.reject(new Error(`closed before the echo: ${describeClose(ev)}`));
            this.waiting = null;
          }
        });
      });
      conn.addEventListener('message', (ev) => {
        if (this.waiting) {
          this.waiting.resolve(ev.data);
          this.waiting = null;
        } else {
          this.queue.push(ev.data);
        }
      });
    }

    next() {
      if (this.queue.length) {
        return Promise.resolve(this.queue.shift());
      }
      if (this.closed) {
        return Promise.reject(new Error(`closed before the echo: ${describeClose(this.closed)}`));
      }
      return new Promise((resolve, reject) => { this.waiting = { resolve, reject }; });
    }
  }

  // selftestLimit bounds the whole self-test, so that it reports a result
  // well before the server lets go of the page's load event (30 s).
  const selftestLimit = 20000;

  // before rejects if promise has not settled by the deadline (from
  // performance.now()).
  const before = (deadline, promise, what) => {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${selftestLimit / 1000} s, waiting for ${what}`)),
        Math.max(0, deadline - performance.now()));
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };

  const randomBytes = (n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) { // getRandomValues fills at most 64 KiB
      crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
    }
    return b;
  };

  // longText returns a string of exactly n bytes of UTF-8 mixing 1-, 2-, 3-
  // and 4-byte characters, so that characters straddle frame and buffer
  // boundaries on the server.
  const longText = (n) => {
    const pieces = ['a', 'é', '€', '𝄞', 'wsecho ', 'ü', '✓', '🚀'];
    let s = '';
    let size = 0;
    for (let i = 0; size < n; i++) {
      let p = pieces[(i * 7) % pieces.length];
      if (size + utf8.encode(p).length > n) {
        p = 'a';
      }
      s += p;
      size += utf8.encode(p).length;
    }
    return s;
  };

  // check throws unless got is an exact echo of want.
  const check = (got, want) => {
    if (typeof want === 'string') {
      if (typeof got !== 'string') {
        throw new Error(`echo is binary (${got.byteLength} B), want text`);
      }
      if (got !== want) {
        let i = 0;
        while (i < got.length && got[i] === want[i]) {
          i++;
        }
        throw new Error(`echo differs at character ${i}: ${utf8.encode(got).length} B, want ${utf8.encode(want).length} B`);
      }
      return;
    }
    if (typeof got === 'string') {
      throw new Error(`echo is text (${utf8.encode(got).length} B), want binary`);
    }
    const g = new Uint8Array(got);
    if (g.length !== want.length) {
      throw new Error(`echo has ${g.length} bytes, want ${want.length}`);
    }
    for (let i = 0; i < g.length; i++) {
      if (g[i] !== want[i]) {
        throw new Error(`byte ${i} is 0x${g[i].toString(16).padStart(2, '0')}, want 0x${want[i].toString(16).padStart(2, '0')}`);
      }
    }
  };

  const selftestCases = () => [
    { name: 'text', data: 'hello, wsecho: ünïcödé ✓ 🚀' },
    { name: 'binary', data: Uint8Array.from({ length: 256 }, (_, i) => i) },
    { name: '70 KB text', data: longText(70 * 1024) },
    { name: '70 KB binary', data: randomBytes(70 * 1024) },
    { name: 'empty text', data: '' },
    { name: 'empty binary', data: new Uint8Array(0) },
  ];

  // selftest sends each case, checks its echo, then closes normally. It
  // resolves when every check passed and rejects with the first failure.
  const selftest = async () => {
    log('event', `self-test: connecting to ${echoURL}`);
    const conn = new WebSocket(echoURL);
    conn.binaryType = 'arraybuffer';
    const rx = new Receiver(conn);
    const deadline = performance.now() + selftestLimit;
    try {
      await before(deadline, rx.opened, 'the connection to open');
      log('event', `self-test: extensions: ${conn.extensions || 'none'}`);
      if (new URLSearchParams(location.search).get('deflate') === '1' && !conn.extensions.startsWith('permessage-deflate')) {
        throw new Error(`extensions "${conn.extensions}", want permessage-deflate`);
      }
      for (const c of selftestCases()) {
        conn.send(c.data);
        log('sent', '', typeof c.data === 'string' ? c.data : c.data.buffer);
        let got;
        try {
          got = await before(deadline, rx.next(), 'the echo');
          log('received', '', got);
          check(got, c.data);
        } catch (err) {
          throw new Error(`${c.name}: ${err.message}`);
        }
      }
      conn.close(1000, 'self-test done');
      const ev = await before(deadline, rx.closing, 'the closing handshake');
      log('event', `self-test: closed: ${describeClose(ev)}`);
      if (ev.code !== 1000 || !ev.wasClean) {
        throw new Error(`close: ${describeClose(ev)}, want code 1000, clean`);
      }
    } finally {
      if (conn.readyState < WebSocket.CLOSING) {
        conn.close(1000, 'self-test failed');
      }
    }
  };

  const params = new URLSearchParams(location.search);
  if (params.get('selftest') === '1') {
    const id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
    // The image is inserted before the load event, so it delays load until
    // the server answers it, which it does once the result is reported.
    const hold = document.createElement('img');
    hold.hidden = true;
    hold.alt = '';
    hold.src = `selftest/wait?id=${id}`;
    document.body.append(hold);

    ui.result.textContent = 'running…';
    ui.result.dataset.state = 'running';
    selftest().then(() => 'PASS', (err) => `FAIL: ${err.message}`).then((result) => {
      ui.result.textContent = result;
      ui.result.dataset.state = result === 'PASS' ? 'pass' : 'fail';
      log(result === 'PASS' ? 'event' : 'error', `self-test: ${result}`);
      return fetch(`selftest/done?id=${id}`, { method: 'POST' });
    }).catch(() => {}); // without the endpoint, the hold has already failed
  }
})();
