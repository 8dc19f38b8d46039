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

It offers the subprotocol "chat". With WSECHO_PEER_PLAIN=1 in the
environment it sends no greeting: it only echoes, as the ten-line echo
server of the websockets documentation does.
"""

import asyncio
import os
import sys

import websockets


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
    async with websockets.serve(h, "127.0.0.1", port, subprotocols=["chat"]) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening on ws://127.0.0.1:%d/" % port, flush=True)
        # Run until standard input closes: the test that started us ended.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
