"""Python `websockets` 10.4 client with permessage-deflate, driven by deflate-python.test.ts.

Usage: /usr/bin/python3 deflate_client.py URL SCENARIO JSON_OPTIONS

Prints one JSON object per line on stdout; the last holds "done": true. Nothing here asserts:
the TypeScript test does, from what this script reports:

- the handshake: the Sec-WebSocket-Extensions header it sent and the one it got back, and the
  parameters websockets agreed (its `extensions` list);
- for every message it sent: its type, UTF-8/byte length, SHA-256, and whether websockets
  compressed it (RSV1) and into how many payload bytes;
- for every message it received: the same, with RSV1 and the payload size as they came off the
  wire (before websockets inflated them).

The payloads are generated here from (type, size, seed), so nothing large crosses argv.
"""

import asyncio
import hashlib
import json
import random
import sys

import websockets
from websockets import frames
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

# Bounds every scenario: a hung server makes the script fail, never hang the test.
SCENARIO_TIMEOUT = 90
STEP_TIMEOUT = 30

WORDS = [
    "user", "room", "message", "typing", "presence", "über", "日本語", "true", "null",
    "Faust", "🎉", "Привет", "{\"id\":", "},", "café", "e\u0301", "𝄞",
]


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def make_payload(spec):
    """Text of about spec["size"] UTF-8 bytes (compressible, non-ASCII) or bytes of exactly that
    many (random blocks, some repeated: partly compressible); the same spec gives the same payload."""
    rng = random.Random(spec["seed"])
    size = spec["size"]
    if spec["type"] == "text":
        if size == 0:
            return ""
        words = rng.choices(WORDS, k=size // 4 + 1)
        text = " ".join(words)
        data = text.encode("utf-8")[:size]
        # Cut at a character boundary (the cut may have split one).
        return data.decode("utf-8", errors="ignore")
    out = bytearray()
    block = rng.randbytes(min(4096, max(size, 1)))
    while len(out) < size:
        out += block if rng.random() < 0.6 else rng.randbytes(len(block))
    return bytes(out[:size])


def describe(message):
    data = message.encode("utf-8") if isinstance(message, str) else message
    return {
        "type": "text" if isinstance(message, str) else "binary",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


class Wire:
    """Watches websockets' permessage-deflate object: per data message, RSV1 and payload bytes."""

    def __init__(self, ws):
        self.incoming = []
        self.outgoing = []
        for ext in ws.extensions:
            if ext.name == "permessage-deflate":
                self._wrap(ext)

    def _wrap(self, ext):
        decode, encode = ext.decode, ext.encode

        def watched_decode(frame, *, max_size=None):
            if frame.opcode in (frames.OP_TEXT, frames.OP_BINARY):
                self.incoming.append({"compressed": frame.rsv1, "wire": len(frame.data)})
            elif frame.opcode is frames.OP_CONT and self.incoming:
                self.incoming[-1]["wire"] += len(frame.data)
            return decode(frame, max_size=max_size)

        def watched_encode(frame):
            out = encode(frame)
            if frame.opcode in (frames.OP_TEXT, frames.OP_BINARY):
                self.outgoing.append({"compressed": out.rsv1, "wire": len(out.data)})
            elif frame.opcode is frames.OP_CONT and self.outgoing:
                self.outgoing[-1]["wire"] += len(out.data)
            return out

        ext.decode = watched_decode
        ext.encode = watched_encode


def connect(url, opts):
    kwargs = {
        "open_timeout": STEP_TIMEOUT,
        "close_timeout": STEP_TIMEOUT,
        "max_size": 64 * 1024 * 1024,
        # Pipelined echoes queue here while the script is still sending: never stop reading.
        "max_queue": None,
    }
    if not opts.get("compression", True):
        kwargs["compression"] = None
    elif "offer" in opts:
        o = opts["offer"]
        kwargs["extensions"] = [
            ClientPerMessageDeflateFactory(
                server_no_context_takeover=o.get("server_no_context_takeover", False),
                client_no_context_takeover=o.get("client_no_context_takeover", False),
                server_max_window_bits=o.get("server_max_window_bits"),
                client_max_window_bits=o.get("client_max_window_bits", True),
            )
        ]
        kwargs["compression"] = None  # the explicit factory above is the only offer
    return websockets.connect(url, **kwargs)


def agreed(ws):
    return [
        {
            "name": ext.name,
            "remote_no_context_takeover": ext.remote_no_context_takeover,
            "local_no_context_takeover": ext.local_no_context_takeover,
            "remote_max_window_bits": ext.remote_max_window_bits,
            "local_max_window_bits": ext.local_max_window_bits,
        }
        for ext in ws.extensions
    ]


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)


# ---- scenarios ------------------------------------------------------------------------------


async def session(url, opts):
    """Sends every payload of opts["plan"] to an echo route and reads the echoes: one at a time,
    or with opts["pipeline"] all sent first and then all read (the echoes overlap the sends)."""
    async with connect(url, opts) as ws:
        wire = Wire(ws)
        emit(
            handshake=True,
            offered=ws.request_headers.get("Sec-WebSocket-Extensions"),
            response=ws.response_headers.get("Sec-WebSocket-Extensions"),
            extensions=agreed(ws),
        )
        sent, received = [], []
        if opts.get("pipeline"):
            for spec in opts["plan"]:
                payload = make_payload(spec)
                sent.append(describe(payload))
                await asyncio.wait_for(ws.send(payload), STEP_TIMEOUT)
            for _ in opts["plan"]:
                received.append(describe(await recv(ws)))
        else:
            for spec in opts["plan"]:
                payload = make_payload(spec)
                sent.append(describe(payload))
                await asyncio.wait_for(ws.send(payload), STEP_TIMEOUT)
                received.append(describe(await recv(ws)))
        await ws.close(1000, "deflate done")
        emit(
            sent=sent,
            received=received,
            wire_out=wire.outgoing,
            wire_in=wire.incoming,
            close={"code": ws.close_code, "reason": ws.close_reason},
            done=True,
        )


SCENARIOS = {"session": session}


async def main():
    url = sys.argv[1]
    scenario = SCENARIOS[sys.argv[2]]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    await asyncio.wait_for(scenario(url, opts), SCENARIO_TIMEOUT)


if __name__ == "__main__":
    asyncio.run(main())
