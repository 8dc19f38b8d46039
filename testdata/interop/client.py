"""A third-party WebSocket client for wsecho's interop tests, on Python's
websockets library (Debian's python3-websockets, version 10.4).

Usage: /usr/bin/python3 client.py URL [CAFILE]

It connects to the echo server at URL (ws:// or wss://; with CAFILE, the
server's certificate must chain to it) and checks, on one connection: a
text, a binary and an empty message, 1 MiB, a text message sent in three
fragments, and a ping's pong; then it closes with 1000 and checks that the
server echoes the code. A second connection sends one message and closes
with 4000. It prints "ok python CHECKS" as its last line, or "FAIL ..."
and exits with status 1.

The environment variable WSECHO_DEFLATE sets permessage-deflate (RFC 7692):
unset, the library's default offer; "off", no offer; "takeover=on|off,
bits=N" (N 8-15), an offer of server_max_window_bits=N and
client_max_window_bits=N (at least 9: zlib cannot compress with an 8-bit
raw window), with server_no_context_takeover and client_no_context_takeover
when takeover is off. Then the server must accept it: the script prints
"deflate: RESPONSE" with the server's Sec-WebSocket-Extensions, sends a
compressible JSON-like message too, and adds the checks "json" and
"deflate".
"""

import asyncio
import os
import ssl
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

TIMEOUT = 10


class Failure(Exception):
    pass


async def expect(ws, name, want):
    got = await asyncio.wait_for(ws.recv(), TIMEOUT)
    if type(got) is not type(want) or got != want:
        raise Failure("%s: got %s %r, want %s %r" % (
            name, type(got).__name__, got[:40], type(want).__name__, want[:40]))


async def main(url, cafile):
    kw = {"max_size": None, "open_timeout": TIMEOUT, "close_timeout": TIMEOUT}
    if cafile:
        kw["ssl"] = ssl.create_default_context(cafile=cafile)
    deflate = deflate_settings()
    if deflate == "off":
        kw["compression"] = None
    elif deflate:
        kw["extensions"] = [ClientPerMessageDeflateFactory(**deflate)]
    checks = []
    table = [("text", "hello, wsecho"), ("binary", b"\x00\x01\xfe\xff"),
             ("empty", ""), ("1MiB", os.urandom(1 << 20))]
    if deflate and deflate != "off":
        table.append(("json", json_ticks(20000)))
    async with websockets.connect(url, **kw) as ws:
        if deflate and deflate != "off":
            resp = ws.response_headers.get("Sec-WebSocket-Extensions")
            print("deflate: %s" % resp, flush=True)
            if not resp or not resp.startswith("permessage-deflate"):
                raise Failure("server did not accept permessage-deflate: %r" % resp)
        for name, msg in table:
            await ws.send(msg)
            await expect(ws, name, msg)
            checks.append(name)
        await ws.send(["frag", "ment", "ed"])  # one message in three frames
        await expect(ws, "fragments", "fragmented")
        checks.append("fragments")
        pong = await ws.ping(b"interop-ping")
        await asyncio.wait_for(pong, TIMEOUT)
        checks.append("pong")
        await ws.close(code=1000, reason="bye")
        if ws.close_code != 1000:
            raise Failure("close 1000: server answered %r" % ws.close_code)
        checks.append("close=1000")
    async with websockets.connect(url, **kw) as ws:
        await ws.send("last")
        await expect(ws, "text", "last")
        await ws.close(code=4000, reason="app")
        if ws.close_code != 4000:
            raise Failure("close 4000: server answered %r" % ws.close_code)
        checks.append("close=4000")
    if deflate and deflate != "off":
        checks.append("deflate")
    print("ok python " + " ".join(checks))


def deflate_settings():
    """Returns the WSECHO_DEFLATE setting: None, "off", or the arguments
    of ClientPerMessageDeflateFactory."""
    v = os.environ.get("WSECHO_DEFLATE")
    if not v or v == "off":
        return v
    opts = dict(kv.split("=", 1) for kv in v.split(","))
    bits, no_takeover = int(opts["bits"]), opts["takeover"] == "off"
    return dict(server_no_context_takeover=no_takeover, client_no_context_takeover=no_takeover,
                server_max_window_bits=bits, client_max_window_bits=max(bits, 9))


def json_ticks(n):
    """Returns n characters of JSON-like price ticks."""
    out, seq = [], 0
    while sum(map(len, out)) < n:
        out.append('{"type":"tick","symbol":"BTC-USD","price":%d.%02d,"seq":%d}\n' % (43000 + seq * 7 % 500, seq % 100, seq))
        seq += 1
    return "".join(out)[:n]


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
    except Exception as e:  # any failure: say what, exit non-zero
        print("FAIL python: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
