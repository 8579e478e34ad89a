"""Python `websockets` 10.4 peer for test/interop/python-streaming.test.ts (issue 15).

Usage: /usr/bin/python3 stream_client.py URL SCENARIO JSON_OPTIONS

Scenarios:
- upload: the legacy asyncio client sends ONE message from an async iterator (each item is a
  fragment, RFC 6455 §5.4), compressed when opts["compress"] (permessage-deflate, websockets'
  default) or not. After the first fragment it waits for the server's "first" text message, which
  the route sends once its onStream got a first chunk: the route reads the message while it is
  still arriving. Then it reads the route's JSON report (or the close frame).
- download: websockets' Sans-I/O ClientConnection over an asyncio socket, which hands over every
  frame as it is parsed (10.4 has no recv_streaming; this is its equivalent). It records each
  fragment of the first message (opcode, FIN, RSV1 as it came off the wire, size), checks text
  as UTF-8 incrementally, hashes the payload, then reads the route's report and the messages after.

Prints JSON lines on stdout; the last holds "done": true. Nothing here asserts: the test does.
"""

import asyncio
import codecs
import hashlib
import json
import random
import sys

import websockets
from websockets.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_TEXT, Close
from websockets.http11 import Response
from websockets.uri import parse_uri

SCENARIO_TIMEOUT = 50
STEP_TIMEOUT = 10


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def make_chunk(i, size, text, zeros=False):
    """Fragment i: random bytes, zeros, or text of 1- to 4-byte code points (about `size` bytes)."""
    if text:
        unit = "aé€😀"  # 10 bytes in UTF-8
        return f"{i:09d}|" + unit * ((size - 10) // 10)
    if zeros:
        return bytes(size)
    return random.Random(i).randbytes(size)


async def upload(url, opts):
    size = opts["size"]
    frag = opts["fragment"]
    text = opts.get("text", False)
    compress = opts.get("compress", False)
    count = (size + frag - 1) // frag
    digest = hashlib.sha256()
    sent = {"bytes": 0, "fragments": 0}
    kwargs = {
        "max_size": None,
        "compression": "deflate" if compress else None,
        "open_timeout": STEP_TIMEOUT,
        "close_timeout": STEP_TIMEOUT,
    }
    async with websockets.connect(url, **kwargs) as ws:
        extensions = [type(e).__name__ for e in ws.extensions]
        first = {}

        async def fragments():
            for i in range(count):
                chunk = make_chunk(i, frag, text, opts.get("zeros", False))
                data = chunk.encode("utf-8") if text else chunk
                digest.update(data)
                sent["bytes"] += len(data)
                sent["fragments"] += 1
                yield chunk
                if i == 0:
                    # The route must have had a first chunk before we send the rest.
                    first["message"] = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)

        try:
            await ws.send(fragments())
            report = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
            await ws.close(1000, "done")
            emit(
                first=first.get("message"),
                report=json.loads(report),
                sent=sent,
                sha256=digest.hexdigest(),
                close={"code": ws.close_code, "reason": ws.close_reason},
                extensions=extensions,
                done=True,
            )
        except ConnectionClosed as exc:
            emit(
                first=first.get("message"),
                sent=sent,
                planned=count,
                extensions=extensions,
                close={"code": exc.rcvd.code if exc.rcvd else None, "reason": exc.rcvd.reason if exc.rcvd else None},
                done=True,
            )


class RecordingDeflate(ClientPerMessageDeflateFactory):
    """permessage-deflate that notes each data frame's RSV1 as it came off the wire."""

    def __init__(self, rsv1_log):
        super().__init__()
        self.rsv1_log = rsv1_log

    def process_response_params(self, params, accepted_extensions):
        ext = super().process_response_params(params, accepted_extensions)
        original = ext.decode
        log = self.rsv1_log

        def decode(frame, *, max_size=None):
            if frame.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                log.append(frame.rsv1)
            return original(frame, max_size=max_size)

        ext.decode = decode
        return ext


async def download(url, opts):
    compress = opts.get("compress", False)
    extra_messages = opts.get("after", 1)
    wsuri = parse_uri(url)
    rsv1_log = []
    extensions = [RecordingDeflate(rsv1_log)] if compress else None
    conn = ClientConnection(wsuri, extensions=extensions, max_size=None)
    reader, writer = await asyncio.open_connection(wsuri.host, wsuri.port)

    def flush():
        for data in conn.data_to_send():
            if data:
                writer.write(data)
            elif writer.can_write_eof():
                writer.write_eof()

    conn.send_request(conn.connect())
    flush()

    messages = []  # each: {"opcode", "fragments": [[opcode, fin, rsv1, size]], "bytes", "sha256", "text_ok", "data"}
    current = None
    digest = None
    decoder = None
    frame_index = 0
    pings = 0
    close = None
    handshake = None
    sent_close = False

    while True:
        data = await asyncio.wait_for(reader.read(1 << 20), STEP_TIMEOUT)
        if data:
            conn.receive_data(data)
        else:
            conn.receive_eof()
        for event in conn.events_received():
            if isinstance(event, Response):
                handshake = {"status": event.status_code, "extensions": event.headers.get("Sec-WebSocket-Extensions")}
                continue
            frame = event
            if frame.opcode == OP_CLOSE:
                c = Close.parse(frame.data)
                close = {"code": c.code, "reason": c.reason}
                continue
            if frame.opcode not in (OP_TEXT, OP_BINARY, OP_CONT):
                if frame.opcode.name == "PING":
                    pings += 1
                continue
            rsv1 = rsv1_log[frame_index] if frame_index < len(rsv1_log) else None
            frame_index += 1
            if frame.opcode != OP_CONT:
                current = {"opcode": int(frame.opcode), "fragments": [], "bytes": 0, "text_ok": True, "data": None}
                digest = hashlib.sha256()
                decoder = codecs.getincrementaldecoder("utf-8")("strict")
                kept = bytearray()
                current["_kept"] = kept
            current["fragments"].append([int(frame.opcode), frame.fin, rsv1, len(frame.data)])
            current["bytes"] += len(frame.data)
            digest.update(frame.data)
            if len(current["_kept"]) < 65536:
                current["_kept"] += frame.data[:65536]
            if current["opcode"] == int(OP_TEXT):
                try:
                    decoder.decode(frame.data, frame.fin)
                except UnicodeDecodeError:
                    current["text_ok"] = False
            if frame.fin:
                current["sha256"] = digest.hexdigest()
                kept = bytes(current.pop("_kept"))
                if current["bytes"] <= 65536:
                    current["data"] = kept.decode("utf-8") if current["opcode"] == int(OP_TEXT) else kept.hex()
                messages.append(current)
                current = None
        if not sent_close and len(messages) >= 1 + extra_messages:
            conn.send_close(1000, "done")
            sent_close = True
        flush()
        if not data:
            break
    writer.close()
    stream = messages[0] if messages else None
    summary = None
    if stream is not None:
        frags = stream["fragments"]
        summary = {
            "opcode": stream["opcode"],
            "fragments": len(frags),
            "first": frags[0],
            "last": frags[-1],
            "middle_ok": all(f[0] == int(OP_CONT) and not f[1] for f in frags[1:-1]),
            "rsv1": sorted({str(f[2]) for f in frags}),
            "bytes": stream["bytes"],
            "sha256": stream["sha256"],
            "text_ok": stream["text_ok"],
        }
    emit(
        handshake=handshake,
        stream=summary,
        after=[{k: m[k] for k in ("opcode", "bytes", "data", "text_ok")} | {"rsv1": m["fragments"][0][2], "fragments": len(m["fragments"])} for m in messages[1:]],
        pings=pings,
        close=close,
        done=True,
    )


async def main():
    url, scenario = sys.argv[1], sys.argv[2]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    scenarios = {"upload": upload, "download": download}
    await asyncio.wait_for(scenarios[scenario](url, opts), SCENARIO_TIMEOUT)


if __name__ == "__main__":
    asyncio.run(main())
