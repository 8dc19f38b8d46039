"""A WebSocket echo server on Python's websockets library (Debian's
python3-websockets, version 10.4), for wsecho's client tests.

Run it with /usr/bin/python3. It listens on 127.0.0.1 (port 0 unless
given as the first argument), prints "listening on ws://127.0.0.1:PORT/"
as its first line, and exits when its standard input closes.

On every connection it first sends a fragmented text message ("hello,
fragmented world" in three fragments), a binary message (00 01 fe ff) and a
ping ("peer-ping"); when the pong comes back it sends "pong received:
peer-ping". Then it echoes every message with its type, except two text
commands:

  close CODE [REASON]   close the connection with CODE and REASON
  header NAME           answer "header NAME: VALUE" from the handshake
  subprotocol           answer "subprotocol: NAME" (the one chosen, or none)
  extensions            answer "extensions: VALUE", the Sec-WebSocket-Extensions
                        of its handshake response (or none)

It offers the subprotocol "chat". With WSECHO_PEER_PLAIN=1 in the
environment it sends no greeting: it only echoes, as the ten-line echo
server of the websockets documentation does.

The environment variable WSECHO_DEFLATE sets permessage-deflate (RFC 7692):
unset, the library's default (accept an offer, with context takeover);
"off", none; "takeover=on|off,bits=N" (N 8-15), accept an offer with
server_max_window_bits=N (at least 9: zlib cannot compress with an 8-bit
raw window) and client_max_window_bits=N, and with
server_no_context_takeover and client_no_context_takeover when takeover is
off.
"""

import asyncio
import os
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def plain_handler(ws):
    async for msg in ws:
        await ws.send(msg)


async def handler(ws):
    await ws.send(["hello, ", "fragmented ", "world"])
    await ws.send(b"\x00\x01\xfe\xff")
    pong = await ws.ping(b"peer-ping")

    async def report_pong():
        try:
            await pong
            await ws.send("pong received: peer-ping")
        except websockets.ConnectionClosed:
            pass

    reporter = asyncio.create_task(report_pong())
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("close "):
                code, _, reason = msg[len("close "):].partition(" ")
                await ws.close(code=int(code), reason=reason)
                break
            if isinstance(msg, str) and msg.startswith("header "):
                name = msg[len("header "):]
                await ws.send("header %s: %s" % (name, ws.request_headers.get(name, "")))
                continue
            if msg == "extensions":
                await ws.send("extensions: %s" % ws.response_headers.get("Sec-WebSocket-Extensions", "none"))
                continue
            if msg == "subprotocol":
                await ws.send("subprotocol: %s" % (ws.subprotocol or "none"))
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        reporter.cancel()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    h = plain_handler if os.environ.get("WSECHO_PEER_PLAIN") == "1" else handler
    kw = {}
    deflate = os.environ.get("WSECHO_DEFLATE")
    if deflate == "off":
        kw["compression"] = None
    elif deflate:
        opts = dict(kv.split("=", 1) for kv in deflate.split(","))
        bits, no_takeover = int(opts["bits"]), opts["takeover"] == "off"
        kw["extensions"] = [ServerPerMessageDeflateFactory(
            server_no_context_takeover=no_takeover, client_no_context_takeover=no_takeover,
            server_max_window_bits=max(bits, 9), client_max_window_bits=bits)]
    async with websockets.serve(h, "127.0.0.1", port, subprotocols=["chat"], **kw) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening on ws://127.0.0.1:%d/" % port, flush=True)
        # Run until standard input closes: the test that started us ended.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
