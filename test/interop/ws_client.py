"""Python `websockets` 10.4 client driven by test/interop/python.test.ts.

Usage: /usr/bin/python3 ws_client.py URL SCENARIO [JSON_OPTIONS]

Prints one JSON object per line on stdout. Every scenario ends with a line holding
"done": true; scenarios that must be interrupted from the test side print
{"ready": true, ...} first. Nothing here asserts: the TypeScript test does.
"""

import asyncio
import base64
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

# Bounds every scenario: a hung server makes the script fail, never hang the test.
SCENARIO_TIMEOUT = 20
STEP_TIMEOUT = 5


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def describe(message):
    if isinstance(message, str):
        return {"type": "text", "text": message}
    return {"type": "binary", "b64": base64.b64encode(message).decode("ascii")}


def close_info(ws):
    return {"code": ws.close_code, "reason": ws.close_reason}


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)


async def wait_closed(ws):
    await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)


def connect(url, opts):
    kwargs = {"open_timeout": STEP_TIMEOUT, "close_timeout": STEP_TIMEOUT, "max_size": 64 * 1024 * 1024}
    if "subprotocols" in opts:
        kwargs["subprotocols"] = opts["subprotocols"]
    if "origin" in opts:
        kwargs["origin"] = opts["origin"]
    if "headers" in opts:
        kwargs["extra_headers"] = opts["headers"]
    return websockets.connect(url, **kwargs)


# ---- scenarios ------------------------------------------------------------------------------


async def echo(url, opts):
    """Sends each message of opts["messages"] ({"text": s} or {"b64": s}) and reads its echo."""
    async with connect(url, opts) as ws:
        out = []
        for m in opts["messages"]:
            await ws.send(m["text"] if "text" in m else base64.b64decode(m["b64"]))
            out.append(describe(await recv(ws)))
        await ws.close(1000, "echo done")
        emit(received=out, close=close_info(ws), done=True)


async def large(url, opts):
    """Sends a text and a binary message of opts["size"] bytes and compares the echoes."""
    size = opts["size"]
    text = "".join(chr(0x61 + i % 26) for i in range(size))
    data = bytes(i % 251 for i in range(size))
    async with connect(url, opts) as ws:
        await ws.send(text)
        got_text = await recv(ws)
        await ws.send(data)
        got_data = await recv(ws)
        emit(
            text_len=len(got_text),
            text_equal=got_text == text,
            binary_len=len(got_data),
            binary_equal=got_data == data,
            done=True,
        )


async def too_big(url, opts):
    """Sends one message of opts["size"] bytes and reports how the server closed."""
    size = opts["size"]
    ws = await connect(url, opts)
    error = None
    received = []
    try:
        payload = "x" * size if opts.get("text") else bytes(size)
        await ws.send(payload)
        while True:
            received.append(describe(await recv(ws))["type"])
    except ConnectionClosed as e:
        error = type(e).__name__
    await wait_closed(ws)
    emit(error=error, received=received, close=close_info(ws), done=True)


async def fragmented(url, opts):
    """websockets 10.4 sends an iterable as one fragmented message (one frame per item)."""
    async with connect(url, opts) as ws:
        await ws.send(opts["text_parts"])
        got_text = await recv(ws)
        await ws.send([base64.b64decode(p) for p in opts["binary_parts"]])
        got_binary = await recv(ws)
        emit(text=describe(got_text), binary=describe(got_binary), done=True)


async def ping(url, opts):
    """Client ping: the returned waiter resolves when the pong with the same payload arrives."""
    async with connect(url, opts) as ws:
        waiter = await ws.ping(opts["payload"].encode("utf-8"))
        try:
            await asyncio.wait_for(waiter, STEP_TIMEOUT)
            ponged = True
        except asyncio.TimeoutError:
            ponged = False
        # Also a message after the ping, to show the connection is still in order.
        await ws.send("after-ping")
        after = await recv(ws)
        emit(ponged=ponged, after=describe(after), done=True)


async def converse(url, opts):
    """Sends opts["send"] (a list of texts), then reads until the connection closes, or, with
    opts["count"], reads that many messages and closes normally."""
    ws = await connect(url, opts)
    received = []
    error = None
    try:
        for text in opts.get("send", []):
            await ws.send(text)
        while "count" not in opts or len(received) < opts["count"]:
            received.append(describe(await recv(ws)))
        await asyncio.wait_for(ws.close(1000, "enough"), STEP_TIMEOUT)
    except ConnectionClosed as e:
        error = type(e).__name__
    except asyncio.TimeoutError:
        error = "timeout"
    await wait_closed(ws)
    emit(received=received, error=error, close=close_info(ws), done=True)


async def client_close(url, opts):
    """Closes with opts["code"] / opts["reason"]; close_code is then what the server echoed."""
    ws = await connect(url, opts)
    await ws.send("before-close")
    first = describe(await recv(ws))
    await asyncio.wait_for(ws.close(opts["code"], opts["reason"]), STEP_TIMEOUT)
    emit(
        first=first,
        close=close_info(ws),
        sent={"code": ws.close_sent.code, "reason": ws.close_sent.reason} if ws.close_sent else None,
        done=True,
    )


async def drop(url, opts):
    """Opens, exchanges one message, then aborts TCP with no close frame."""
    ws = await connect(url, opts)
    await ws.send("hi")
    emit(ready=True, echo=describe(await recv(ws)))
    ws.transport.abort()
    await asyncio.sleep(0.05)
    emit(done=True)


async def handshake(url, opts):
    """Opens (or fails to open) and reports the negotiated subprotocol and the first message."""
    try:
        ws = await connect(url, opts)
    except InvalidStatusCode as e:
        emit(error="InvalidStatusCode", status=e.status_code, headers=dict(e.headers.raw_items()), done=True)
        return
    first = None
    if opts.get("recv"):
        first = describe(await recv(ws))
    subprotocol = ws.subprotocol
    await ws.close()
    emit(error=None, subprotocol=subprotocol, first=first, done=True)


async def wait_message(url, opts):
    """Opens, says ready, waits for opts["count"] messages pushed by the server, then closes."""
    async with connect(url, opts) as ws:
        emit(ready=True)
        got = [describe(await recv(ws)) for _ in range(opts.get("count", 1))]
        emit(received=got, done=True)


SCENARIOS = {
    "echo": echo,
    "large": large,
    "too_big": too_big,
    "fragmented": fragmented,
    "ping": ping,
    "converse": converse,
    "client_close": client_close,
    "drop": drop,
    "handshake": handshake,
    "wait_message": wait_message,
}


async def main():
    url = sys.argv[1]
    scenario = SCENARIOS[sys.argv[2]]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    await asyncio.wait_for(scenario(url, opts), SCENARIO_TIMEOUT)


if __name__ == "__main__":
    asyncio.run(main())
