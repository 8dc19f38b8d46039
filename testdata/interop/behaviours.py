"""A third-party client for wsecho's behaviours (issue 13), on Python's
websockets library (Debian's python3-websockets, version 10.4).

Usage: /usr/bin/python3 behaviours.py BASE

BASE is the server's ws://HOST:PORT. It checks, each on its own
connection to /echo: a fragmented echo (fragment=3 with a ping between
fragments) arrives as one message, and so does a longer one on the
compressed connection (websockets offers permessage-deflate by default; the
server compresses it, then splits it); the greeting comes first; after=1 with
close=1013 ends with that code and reason; after=1 with drop=1 ends with
1006 (no Close frame); push= sends padded ticks between the echoes. It
prints "ok python CHECKS" as its last line, or "FAIL ..." and exits 1.
"""

import asyncio
import json
import sys

import websockets

TIMEOUT = 10


class Failure(Exception):
    pass


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


async def closed_with(ws):
    try:
        got = await recv(ws)
    except websockets.ConnectionClosed as e:
        return e.code, e.reason
    raise Failure("got %r, want the end of the connection" % got)


async def main(base):
    kw = {"open_timeout": TIMEOUT, "close_timeout": TIMEOUT}
    checks = []

    async with websockets.connect(base + "/echo?fragment=3&ping-between=1", **kw) as ws:
        msg = "hello, fragments: é€😀"
        await ws.send(msg)
        if (got := await recv(ws)) != msg:
            raise Failure("fragment: got %r" % got)
    checks.append("fragment")

    async with websockets.connect(base + "/echo?fragment=3&ping-between=1", **kw) as ws:
        if not any(e.name == "permessage-deflate" for e in ws.extensions):
            raise Failure("fragment_compressed: compression not negotiated: %r" % ws.extensions)
        msg = "compressed, then split: é€😀 " * 10
        await ws.send(msg)
        if (got := await recv(ws)) != msg:
            raise Failure("fragment_compressed: got %r" % got)
    checks.append("fragment_compressed")

    async with websockets.connect(base + "/echo?greeting=welcome", **kw) as ws:
        await ws.send("a")
        got = [await recv(ws), await recv(ws)]
        if got != ["welcome", "a"]:
            raise Failure("greeting: got %r" % got)
    checks.append("greeting")

    async with websockets.connect(base + "/echo?after=1&close=1013&reason=later", **kw) as ws:
        await ws.send("a")
        if (got := await recv(ws)) != "a":
            raise Failure("close: echo %r" % got)
        if (got := await closed_with(ws)) != (1013, "later"):
            raise Failure("close: ended with %r, want (1013, 'later')" % (got,))
    checks.append("close=1013")

    async with websockets.connect(base + "/echo?after=1&drop=1", **kw) as ws:
        await ws.send("a")
        if (got := await recv(ws)) != "a":
            raise Failure("drop: echo %r" % got)
        if (got := await closed_with(ws))[0] != 1006:
            raise Failure("drop: ended with %r, want 1006" % (got,))
    checks.append("drop")

    async with websockets.connect(base + "/echo?push=100ms&push-size=300", **kw) as ws:
        pushes = echoes = 0
        while pushes < 3 or echoes < 1:
            got = await recv(ws)
            if got == "mine":
                echoes += 1
                continue
            tick = json.loads(got)
            if len(got) != 300 or tick["high"] < tick["low"]:
                raise Failure("push: %d bytes %r" % (len(got), got[:60]))
            pushes += 1
            if pushes == 1:
                await ws.send("mine")
    checks.append("push")
    print("ok python " + " ".join(checks))


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1]))
    except Exception as e:  # any failure: say what, exit non-zero
        print("FAIL python: %s: %s" % (type(e).__name__, e))
        sys.exit(1)
