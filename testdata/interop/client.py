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
"""

import asyncio
import os
import ssl
import sys

import websockets

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
    checks = []
    async with websockets.connect(url, **kw) as ws:
        for name, msg in [("text", "hello, wsecho"), ("binary", b"\x00\x01\xfe\xff"),
                          ("empty", ""), ("1MiB", os.urandom(1 << 20))]:
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
    print("ok python " + " ".join(checks))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
    except Exception as e:  # any failure: say what, exit non-zero
        print("FAIL python: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
