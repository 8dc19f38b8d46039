// wsecho's browser client: plain JavaScript, no build step.
//
// The WebSocket URL comes from the page's own location: ws: for http:,
// wss: for https:, the same host and port, and the path "echo" next to the
// page (/echo when the page is served at /).
//
// The behaviour panel builds the URL's query (delay=, fragment=, ...: the
// per-connection behaviours of /echo); the URL box stays editable. The tick
// chart draws /ticks (WebSocket) or /sse (EventSource) as candles on a
// canvas, with no library.
//
// With ?selftest=1 the page runs a self-test against the echo endpoint (the
// plain echo, then a behaviour run: greeting, fragmented echoes, pushes and a
// server Close with a chosen code) and /sse, and writes PASS or "FAIL:
// reason" into #result. With &restart=1 as well, the SSE part waits for the
// stream to end (the server restarting) and checks that the browser resumes
// with Last-Event-ID: no tick lost, none twice. While it runs, a hidden image
// (selftest/wait?id=...) holds the page's load event, and the page releases
// it with POST selftest/done?id=... once #result is written, so a headless
// browser that dumps the DOM at load (chromium --dump-dom) sees the result.
// Without those endpoints the self-test still runs and shows its result.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $('state'), url: $('url'), connect: $('connect'), disconnect: $('disconnect'),
    form: $('send'), text: $('text'), sendText: $('send-text'), sendBinary: $('send-binary'),
    log: $('log'), clear: $('clear'), result: $('result'),
    behaviours: $('behaviours'), chart: $('chart'), chartSource: $('chart-source'),
    chartToggle: $('chart-toggle'), chartStatus: $('chart-status'),
  };

  const echoURL = (() => {
    const u = new URL('echo', location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.search = '';
    u.hash = '';
    return u.href;
  })();
  ui.url.value = echoURL;

  // sameDir returns the URL of path next to the page, as ws: (or wss:) when
  // ws is true.
  const sameDir = (path, ws) => {
    const u = new URL(path, location.href);
    if (ws) {
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    }
    u.hash = '';
    return u;
  };

  // The behaviour panel: every filled field becomes a query parameter.
  const behaviourURL = () => {
    const u = new URL(echoURL);
    for (const el of ui.behaviours.elements) {
      if (!el.name || (el.type === 'checkbox' ? !el.checked : el.value === '')) {
        continue;
      }
      u.searchParams.set(el.name, el.type === 'checkbox' ? '1' : el.value);
    }
    return u.href;
  };
  ui.behaviours.addEventListener('input', () => { ui.url.value = behaviourURL(); });
  ui.behaviours.addEventListener('reset', () => setTimeout(() => { ui.url.value = behaviourURL(); }));

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
    ui.url.readOnly = state !== 'closed';
  };

  const connect = () => {
    if (ws) {
      return;
    }
    const url = ui.url.value.trim();
    log('event', `connecting to ${url}`);
    setState('connecting', 'connecting…');
    let conn;
    try {
      conn = new WebSocket(url);
    } catch (err) {
      log('error', `bad URL: ${err.message}`);
      setState('closed', 'disconnected');
      return;
    }
    conn.binaryType = 'arraybuffer';
    conn.onopen = () => {
      log('event', 'open');
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
  // extrasLimit bounds the behaviour run and the SSE run after it.
  const extrasLimit = 8000;

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

  // behaviourRun connects with a greeting, fragmented echoes, pushes and a
  // server Close after three echoes, and checks what the browser sees: the
  // greeting first, each echo whole, pushes in between, the Close's code.
  const behaviourRun = async (deadline) => {
    const u = new URL(echoURL);
    const q = { greeting: 'hello from wsecho', fragment: '7', 'ping-between': '1', push: '100ms',
      'push-size': '256', after: '3', close: '4001', reason: 'self-test over' };
    for (const [k, v] of Object.entries(q)) {
      u.searchParams.set(k, v);
    }
    log('event', `self-test: behaviours: connecting to ${u.href}`);
    const conn = new WebSocket(u.href);
    conn.binaryType = 'arraybuffer';
    const rx = new Receiver(conn);
    let pushes = 0;
    // nextEcho returns the next message that is not a push.
    const nextEcho = async (what) => {
      for (;;) {
        const got = await before(deadline, rx.next(), what);
        if (typeof got === 'string' && got.startsWith('{"seq":') && got.length === 256) {
          pushes++;
          continue;
        }
        return got;
      }
    };
    try {
      await before(deadline, rx.opened, 'the connection to open');
      const greeting = await before(deadline, rx.next(), 'the greeting');
      if (greeting !== q.greeting) {
        throw new Error(`greeting: got ${JSON.stringify(greeting)}, want ${JSON.stringify(q.greeting)}`);
      }
      const cases = [longText(1000), Uint8Array.from({ length: 300 }, (_, i) => i & 0xff), longText(70 * 1024)];
      for (const [i, data] of cases.entries()) {
        if (i === 2) {
          while (pushes < 2) { // pushes come between the echoes, unasked
            await before(deadline, rx.next(), 'a push').then((m) => { pushes++; return m; });
          }
        }
        conn.send(data);
        try {
          check(await nextEcho('the fragmented echo'), data);
        } catch (err) {
          throw new Error(`fragmented echo ${i + 1}: ${err.message}`);
        }
      }
      const ev = await before(deadline, rx.closing, 'the server\'s Close');
      log('event', `self-test: behaviours: ${pushes} pushes; closed: ${describeClose(ev)}`);
      if (ev.code !== 4001 || ev.reason !== q.reason || !ev.wasClean) {
        throw new Error(`server close: ${describeClose(ev)}, want code 4001, reason ${JSON.stringify(q.reason)}`);
      }
    } finally {
      if (conn.readyState < WebSocket.CLOSING) {
        conn.close(1000, 'self-test failed');
      }
    }
  };

  // sseRun reads ticks from /sse with EventSource: each event's id is its
  // tick's seq, one after the other. With restart, it also waits for the
  // stream to end and the browser to resume with Last-Event-ID.
  const sseRun = (deadline, restart) => new Promise((resolve, reject) => {
    const url = sameDir('sse', false).href;
    log('event', `self-test: EventSource ${url}`);
    const es = new EventSource(url);
    let last = null;
    let count = 0;
    let reconnects = 0;
    const want = restart ? 6 : 3;
    const stop = (err) => {
      es.close();
      clearTimeout(timer);
      if (err) {
        reject(err);
      } else {
        log('event', `self-test: sse: ${count} ticks, ${last - count + 1}…${last}, ${reconnects} reconnects`);
        resolve();
      }
    };
    const timer = setTimeout(() => stop(new Error('sse: timed out')), Math.max(0, deadline - performance.now()));
    es.addEventListener('gap', (ev) => stop(new Error(`sse: gap: ${ev.data}`)));
    es.onerror = () => {
      if (!restart || es.readyState === EventSource.CLOSED) {
        stop(new Error(`sse: the stream failed (readyState ${es.readyState})`));
        return;
      }
      reconnects++; // the browser reconnects with Last-Event-ID
      log('event', `self-test: sse: stream ended after id ${last}; reconnecting`);
    };
    es.onmessage = (ev) => {
      const seq = Number(ev.lastEventId);
      const tick = JSON.parse(ev.data);
      if (tick.seq !== seq) {
        stop(new Error(`sse: event id ${ev.lastEventId} carries tick ${tick.seq}`));
        return;
      }
      if (last !== null && seq !== last + 1) {
        stop(new Error(`sse: after id ${last} came id ${seq}${reconnects ? ' (after a reconnect)' : ''}`));
        return;
      }
      last = seq;
      count++;
      if (count >= want && (!restart || (reconnects > 0 && count >= want))) {
        stop(null);
      }
    };
  });

  // --- the tick chart -----------------------------------------------------

  // chartCandles is how many candles the chart shows.
  const chartCandles = 60;

  const chart = {
    ticks: new Map(), // seq -> tick
    source: null, // a WebSocket or an EventSource
    running: false,

    add(tick) {
      this.ticks.set(tick.seq, tick);
      for (const seq of this.ticks.keys()) {
        if (this.ticks.size <= chartCandles) {
          break;
        }
        this.ticks.delete(seq);
      }
      this.draw();
    },

    // open connects to the chosen source; the first tick tells the seq, and
    // the chart then reconnects from chartCandles ticks back to fill itself.
    open(from) {
      const kind = ui.chartSource.value;
      const q = from === undefined ? '' : `?from=${from}`;
      const onTick = (data) => {
        const tick = JSON.parse(data);
        if (from === undefined && this.ticks.size === 0) {
          this.close();
          this.open(Math.max(0, tick.seq - chartCandles + 1));
          return;
        }
        this.add(tick);
        ui.chartStatus.textContent = `${kind === 'sse' ? '/sse' : '/ticks'} · seq ${tick.seq} · close ${tick.close.toFixed(2)}`;
      };
      if (kind === 'sse') {
        const es = new EventSource(sameDir('sse', false).href + q);
        es.onmessage = (ev) => onTick(ev.data);
        es.onerror = () => { ui.chartStatus.textContent = '/sse · reconnecting…'; };
        this.source = es;
      } else {
        const conn = new WebSocket(sameDir('ticks', true).href + q);
        conn.onmessage = (ev) => onTick(ev.data);
        conn.onclose = (ev) => {
          if (this.source === conn) {
            ui.chartStatus.textContent = `/ticks closed: ${describeClose(ev)}`;
          }
        };
        this.source = conn;
      }
    },

    close() {
      const src = this.source;
      this.source = null;
      if (src) {
        src.close();
      }
    },

    start() {
      this.running = true;
      ui.chartToggle.textContent = 'Stop';
      this.ticks.clear();
      this.open();
    },

    stop() {
      this.running = false;
      ui.chartToggle.textContent = 'Start';
      this.close();
      ui.chartStatus.textContent = 'stopped';
    },

    // draw paints the candles: green when the price rose, red when it fell,
    // with the price scale on the right.
    draw() {
      const cv = ui.chart;
      const dpr = window.devicePixelRatio || 1;
      const w = cv.clientWidth || cv.width;
      const h = cv.clientHeight || cv.height;
      if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
        cv.width = Math.round(w * dpr);
        cv.height = Math.round(h * dpr);
      }
      const g = cv.getContext('2d');
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      const css = getComputedStyle(document.documentElement);
      const color = (name) => css.getPropertyValue(name).trim();
      const ticks = [...this.ticks.values()].sort((a, b) => a.seq - b.seq);
      if (ticks.length === 0) {
        return;
      }
      const lo = Math.min(...ticks.map((t) => t.low));
      const hi = Math.max(...ticks.map((t) => t.high));
      const pad = { l: 8, r: 64, t: 12, b: 22 };
      const span = hi - lo || 1;
      const y = (p) => pad.t + (hi - p) / span * (h - pad.t - pad.b);
      const slot = (w - pad.l - pad.r) / chartCandles;
      g.font = '11px ui-monospace, monospace';
      g.lineWidth = 1;
      // Grid lines and the price scale.
      g.strokeStyle = color('--line');
      g.fillStyle = color('--muted');
      for (let i = 0; i <= 4; i++) {
        const p = lo + span * i / 4;
        const yy = Math.round(y(p)) + 0.5;
        g.beginPath();
        g.moveTo(pad.l, yy);
        g.lineTo(w - pad.r, yy);
        g.stroke();
        g.fillText(p.toFixed(2), w - pad.r + 6, yy + 4);
      }
      const first = ticks[ticks.length - 1].seq - chartCandles + 1;
      for (const t of ticks) {
        const x = pad.l + (t.seq - first) * slot;
        const up = t.close >= t.open;
        g.strokeStyle = g.fillStyle = up ? color('--pass') : color('--fail');
        const cx = Math.round(x + slot / 2) + 0.5;
        g.beginPath();
        g.moveTo(cx, y(t.high));
        g.lineTo(cx, y(t.low));
        g.stroke();
        const top = y(Math.max(t.open, t.close));
        const body = Math.max(1, y(Math.min(t.open, t.close)) - top);
        g.fillRect(x + slot * 0.15, top, slot * 0.7, body);
      }
      const lastTick = ticks[ticks.length - 1];
      g.fillStyle = color('--muted');
      g.fillText(new Date(lastTick.time).toLocaleTimeString([], { hour12: false }), pad.l, h - 6);
    },
  };

  ui.chartToggle.addEventListener('click', () => (chart.running ? chart.stop() : chart.start()));
  ui.chartSource.addEventListener('change', () => {
    if (chart.running) {
      chart.close();
      chart.start();
    }
  });
  window.addEventListener('resize', () => chart.draw());

  const params = new URLSearchParams(location.search);
  if (params.get('selftest') !== '1') {
    chart.start();
  } else {
    chart.stop();
  }
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
    const run = async () => {
      await selftest();
      const deadline = performance.now() + extrasLimit;
      await behaviourRun(deadline);
      await sseRun(deadline, params.get('restart') === '1');
    };
    run().then(() => 'PASS', (err) => `FAIL: ${err.message}`).then((result) => {
      ui.result.textContent = result;
      ui.result.dataset.state = result === 'PASS' ? 'pass' : 'fail';
      log(result === 'PASS' ? 'event' : 'error', `self-test: ${result}`);
      return fetch(`selftest/done?id=${id}`, { method: 'POST' });
    }).catch(() => {}); // without the endpoint, the hold has already failed
  }
})();
