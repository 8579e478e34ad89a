/**
 * FrameParser rules, fed with hex frames and frames built by the tiny encoder below (written
 * here, independently of src/protocol/framer.ts, so the parser and the framer check each other).
 */
import { Buffer } from 'node:buffer';
import { afterAll, describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/protocol/errors.js';
import { FrameParser, type ParserOptions, type ParserSink } from '../../src/protocol/parser.js';
import { useSimd } from '../../src/protocol/mask.js';

// ---------------------------------------------------------------------------------------------
// Test-side encoder and recording sink
// ---------------------------------------------------------------------------------------------

/** Hex text (spaces allowed) to bytes. */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

interface FrameSpec {
  op: number;
  payload?: Uint8Array | string;
  fin?: boolean;
  /** 3-bit RSV value: RSV1 = 4, RSV2 = 2, RSV3 = 1. */
  rsv?: number;
  /** Default true (a client frame). */
  mask?: boolean;
  key?: readonly [number, number, number, number];
  /** Force the length encoding. */
  len?: 7 | 16 | 64;
}

const DEFAULT_KEY = [0x37, 0xfa, 0x21, 0x3d] as const;

/** Encodes one frame by the letter of RFC 6455 §5.2. */
function frame(spec: FrameSpec): Buffer {
  const data = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : Buffer.from(spec.payload ?? []);
  const n = data.length;
  const masked = spec.mask ?? true;
  const len = spec.len ?? (n < 126 ? 7 : n < 65536 ? 16 : 64);
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.op];
  const m = masked ? 0x80 : 0;
  if (len === 7) {
    head.push(m | n);
  } else if (len === 16) {
    head.push(m | 126, (n >> 8) & 0xff, n & 0xff);
  } else {
    head.push(m | 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  if (!masked) return Buffer.concat([Buffer.from(head), data]);
  const key = spec.key ?? DEFAULT_KEY;
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = (data[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), Buffer.from(key), body]);
}

/** A close frame payload: 2-byte code then reason bytes. */
function closeBody(code: number, reason: Uint8Array | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : Buffer.from(reason);
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

type Event =
  | readonly ['message', 'text' | 'binary', string]
  | readonly ['ping', string]
  | readonly ['pong', string]
  | readonly ['close', number, string]
  | readonly ['error', string, number];

class Recorder implements ParserSink {
  events: Event[] = [];
  messages: Buffer[] = [];
  errors: ProtocolError[] = [];
  onMessage(data: Buffer, isText: boolean): void {
    this.messages.push(data);
    this.events.push(['message', isText ? 'text' : 'binary', data.toString('hex')]);
  }
  onPing(data: Buffer): void {
    this.events.push(['ping', data.toString('hex')]);
  }
  onPong(data: Buffer): void {
    this.events.push(['pong', data.toString('hex')]);
  }
  onCloseFrame(code: number, reason: string): void {
    this.events.push(['close', code, reason]);
  }
  onProtocolError(error: ProtocolError): void {
    this.errors.push(error);
    this.events.push(['error', error.code, error.closeCode]);
  }
}

const SERVER: ParserOptions = { expectMasked: true, maxPayload: 1 << 20, maxFragments: 1000 };
const CLIENT: ParserOptions = { expectMasked: false, maxPayload: 1 << 20, maxFragments: 1000 };

function setup(options: Partial<ParserOptions> = {}): { parser: FrameParser; sink: Recorder } {
  const sink = new Recorder();
  const parser = new FrameParser(sink, { ...SERVER, ...options });
  return { parser, sink };
}

/** Feeds each chunk (a copy: the parser unmasks in place) and returns the events. */
function parse(chunks: Buffer | readonly Buffer[], options: Partial<ParserOptions> = {}): Event[] {
  const { parser, sink } = setup(options);
  for (const chunk of Buffer.isBuffer(chunks) ? [chunks] : chunks) parser.push(Buffer.from(chunk));
  return sink.events;
}

function textEvent(text: string): Event {
  return ['message', 'text', Buffer.from(text, 'utf8').toString('hex')];
}
function binaryEvent(bytes: Uint8Array): Event {
  return ['message', 'binary', Buffer.from(bytes).toString('hex')];
}
function err(code: string, closeCode: number): Event {
  return ['error', code, closeCode];
}

// ---------------------------------------------------------------------------------------------

describe('FrameParser: RFC 6455 §5.7 example frames', () => {
  it('RFC 6455 §5.7: a single-frame masked text message "Hello" from a client', () => {
    expect(parse(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'))).toEqual([textEvent('Hello')]);
  });

  it('RFC 6455 §5.7: a single-frame unmasked text message "Hello" parsed by the client role', () => {
    expect(parse(hex('81 05 48 65 6c 6c 6f'), CLIENT)).toEqual([textEvent('Hello')]);
  });

  it('RFC 6455 §5.7: a fragmented unmasked text message "Hel" + "lo" parsed by the client role', () => {
    expect(parse([hex('01 03 48 65 6c'), hex('80 02 6c 6f')], CLIENT)).toEqual([textEvent('Hello')]);
  });

  it('RFC 6455 §5.7: an unmasked ping and a masked pong carrying "Hello"', () => {
    expect(parse(hex('89 05 48 65 6c 6c 6f'), CLIENT)).toEqual([['ping', '48656c6c6f']]);
    expect(parse(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'))).toEqual([['pong', '48656c6c6f']]);
  });

  it('RFC 6455 §5.7: a 256-byte binary message in a 16-bit length', () => {
    const payload = Buffer.alloc(256, 0x5a);
    expect(parse(Buffer.concat([hex('82 7e 01 00'), payload]), CLIENT)).toEqual([binaryEvent(payload)]);
  });

  it('RFC 6455 §5.7: a 64 KiB binary message in a 64-bit length', () => {
    const payload = Buffer.alloc(65536, 0xa5);
    expect(parse(Buffer.concat([hex('82 7f 00 00 00 00 00 01 00 00'), payload]), CLIENT)).toEqual([binaryEvent(payload)]);
  });
});

describe('FrameParser: masking (RFC 6455 §5.1, §5.3)', () => {
  it('RFC 6455 §5.1: an unmasked client frame fails with 1002', () => {
    const events = parse(frame({ op: 0x1, payload: 'hi', mask: false }));
    expect(events).toEqual([err('WS_UNMASKED_FRAME', 1002)]);
  });

  it('RFC 6455 §5.1: an unmasked client control frame (ping) fails with 1002', () => {
    expect(parse(frame({ op: 0x9, payload: 'p', mask: false }))).toEqual([err('WS_UNMASKED_FRAME', 1002)]);
  });

  it('RFC 6455 §5.1: an unmasked continuation frame of a client message fails with 1002', () => {
    const events = parse([frame({ op: 0x1, payload: 'a', fin: false }), frame({ op: 0x0, payload: 'b', mask: false })]);
    expect(events).toEqual([err('WS_UNMASKED_FRAME', 1002)]);
  });

  it('RFC 6455 §5.1: the client-role parser fails a masked server frame with 1002', () => {
    expect(parse(frame({ op: 0x1, payload: 'hi', mask: true }), CLIENT)).toEqual([err('WS_MASKED_FRAME', 1002)]);
    expect(parse(frame({ op: 0xa, payload: '', mask: true }), CLIENT)).toEqual([err('WS_MASKED_FRAME', 1002)]);
  });

  it('RFC 6455 §5.3: a masked payload is unmasked with the key in the frame (any key)', () => {
    const keys = [
      [0, 0, 0, 0],
      [0xff, 0xff, 0xff, 0xff],
      [1, 2, 3, 4],
      [0x80, 0x00, 0x7f, 0xfe],
    ] as const;
    const payload = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 7) & 0xff));
    for (const key of keys) {
      expect(parse(frame({ op: 0x2, payload, key }))).toEqual([binaryEvent(payload)]);
    }
  });

  it('RFC 6455 §5.1: errors are reported as ProtocolError instances carrying both codes', () => {
    const { parser, sink } = setup();
    parser.push(frame({ op: 0x1, payload: 'x', mask: false }));
    expect(sink.errors).toHaveLength(1);
    const e = sink.errors[0] as ProtocolError;
    expect(e).toBeInstanceOf(ProtocolError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe('WS_UNMASKED_FRAME');
    expect(e.closeCode).toBe(1002);
    expect(typeof e.message).toBe('string');
  });
});

describe('FrameParser: reserved bits (RFC 6455 §5.2)', () => {
  for (const rsv of [4, 2, 1, 6, 7]) {
    it(`RFC 6455 §5.2: RSV=${rsv.toString(2).padStart(3, '0')} on a text frame without an extension fails with 1002`, () => {
      expect(parse(frame({ op: 0x1, payload: 'x', rsv }))).toEqual([err('WS_RESERVED_BITS', 1002)]);
    });
  }

  it('RFC 6455 §5.2: RSV bits on a control frame fail with 1002', () => {
    expect(parse(frame({ op: 0x9, payload: 'x', rsv: 4 }))).toEqual([err('WS_RESERVED_BITS', 1002)]);
    expect(parse(frame({ op: 0x8, rsv: 1 }))).toEqual([err('WS_RESERVED_BITS', 1002)]);
  });

  it('RFC 7692 §6: with allowRsv1, RSV1 is accepted on the first frame of a text or binary message', () => {
    expect(parse(frame({ op: 0x1, payload: 'abc', rsv: 4 }), { allowRsv1: true })).toEqual([textEvent('abc')]);
    expect(parse(frame({ op: 0x2, payload: Uint8Array.of(1, 2), rsv: 4 }), { allowRsv1: true })).toEqual([
      binaryEvent(Uint8Array.of(1, 2)),
    ]);
    const fragmented = [frame({ op: 0x2, payload: Uint8Array.of(1), rsv: 4, fin: false }), frame({ op: 0x0, payload: Uint8Array.of(2) })];
    expect(parse(fragmented, { allowRsv1: true })).toEqual([binaryEvent(Uint8Array.of(1, 2))]);
  });

  it('RFC 7692 §6.1: even with allowRsv1, RSV1 on a continuation frame fails with 1002', () => {
    const events = parse([frame({ op: 0x1, payload: 'a', rsv: 4, fin: false }), frame({ op: 0x0, payload: 'b', rsv: 4 })], {
      allowRsv1: true,
    });
    expect(events).toEqual([err('WS_RESERVED_BITS', 1002)]);
  });

  it('RFC 7692 §6.1: even with allowRsv1, RSV1 on a control frame fails with 1002', () => {
    for (const op of [0x8, 0x9, 0xa]) {
      expect(parse(frame({ op, rsv: 4 }), { allowRsv1: true })).toEqual([err('WS_RESERVED_BITS', 1002)]);
    }
  });

  it('RFC 6455 §5.2: allowRsv1 does not let RSV2 or RSV3 through', () => {
    for (const rsv of [2, 1, 6, 5, 7]) {
      expect(parse(frame({ op: 0x1, payload: 'a', rsv }), { allowRsv1: true })).toEqual([err('WS_RESERVED_BITS', 1002)]);
    }
  });
});

describe('FrameParser: opcodes (RFC 6455 §5.2)', () => {
  for (const op of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    it(`RFC 6455 §5.2: reserved opcode 0x${op.toString(16)} fails with 1002`, () => {
      expect(parse(frame({ op, payload: 'x' }))).toEqual([err('WS_UNKNOWN_OPCODE', 1002)]);
    });
  }

  it('RFC 6455 §5.2: a reserved opcode in the middle of a fragmented message fails with 1002', () => {
    const events = parse([frame({ op: 0x1, payload: 'a', fin: false }), frame({ op: 0x3, payload: 'b' })]);
    expect(events).toEqual([err('WS_UNKNOWN_OPCODE', 1002)]);
  });
});

describe('FrameParser: control frames (RFC 6455 §5.5)', () => {
  it('RFC 6455 §5.5: a control frame with a 125-byte payload is accepted', () => {
    const payload = Buffer.alloc(125, 0x61);
    expect(parse(frame({ op: 0x9, payload }))).toEqual([['ping', payload.toString('hex')]]);
  });

  for (const op of [0x8, 0x9, 0xa]) {
    it(`RFC 6455 §5.5: a control frame (0x${op.toString(16)}) over 125 bytes fails with 1002`, () => {
      expect(parse(frame({ op, payload: Buffer.alloc(126, 0x61) }))).toEqual([err('WS_CONTROL_TOO_LONG', 1002)]);
    });

    it(`RFC 6455 §5.5: a fragmented control frame (0x${op.toString(16)}, FIN clear) fails with 1002`, () => {
      expect(parse(frame({ op, payload: 'x', fin: false }))).toEqual([err('WS_CONTROL_FRAGMENTED', 1002)]);
    });
  }

  it('RFC 6455 §5.5: a control frame announcing 16-bit or 64-bit lengths fails with 1002 from the header alone', () => {
    // Only the first two header bytes: the 7-bit length field (126/127) already says > 125.
    expect(parse(hex('89 fe'))).toEqual([err('WS_CONTROL_TOO_LONG', 1002)]);
    expect(parse(hex('8a ff'))).toEqual([err('WS_CONTROL_TOO_LONG', 1002)]);
  });

  it('RFC 6455 §5.5.2/§5.5.3: ping and pong payloads are reported (empty, text, binary)', () => {
    const events = parse([
      frame({ op: 0x9 }),
      frame({ op: 0x9, payload: 'ping!' }),
      frame({ op: 0xa, payload: Uint8Array.of(0, 0xff, 0x80) }),
      frame({ op: 0xa }),
    ]);
    expect(events).toEqual([
      ['ping', ''],
      ['ping', Buffer.from('ping!').toString('hex')],
      ['pong', '00ff80'],
      ['pong', ''],
    ]);
  });

  it('RFC 6455 §5.5.2: a ping payload is reported as bytes, even when it is not UTF-8', () => {
    expect(parse(frame({ op: 0x9, payload: Uint8Array.of(0xff, 0xfe, 0xc0) }))).toEqual([['ping', 'fffec0']]);
  });

  it('RFC 6455 §5.4: control frames interleaved inside a fragmented message are handled and the message still assembles', () => {
    const events = parse([
      frame({ op: 0x1, payload: 'Hel', fin: false }),
      frame({ op: 0x9, payload: 'p1' }),
      frame({ op: 0x0, payload: 'lo ', fin: false }),
      frame({ op: 0xa, payload: 'p2' }),
      frame({ op: 0x9 }),
      frame({ op: 0x0, payload: 'world' }),
      frame({ op: 0x1, payload: 'next' }),
    ]);
    expect(events).toEqual([
      ['ping', Buffer.from('p1').toString('hex')],
      ['pong', Buffer.from('p2').toString('hex')],
      ['ping', ''],
      textEvent('Hello world'),
      textEvent('next'),
    ]);
  });

  it('RFC 6455 §5.4: a binary message interleaved with a ping keeps its bytes in order', () => {
    const events = parse([
      frame({ op: 0x2, payload: Uint8Array.of(1, 2), fin: false }),
      frame({ op: 0x9, payload: Uint8Array.of(9) }),
      frame({ op: 0x0, payload: Uint8Array.of(3), fin: false }),
      frame({ op: 0x0, payload: Uint8Array.of(4, 5) }),
    ]);
    expect(events).toEqual([['ping', '09'], binaryEvent(Uint8Array.of(1, 2, 3, 4, 5))]);
  });
});

describe('FrameParser: fragmentation (RFC 6455 §5.4)', () => {
  it('RFC 6455 §5.4: a continuation frame with no open message fails with 1002', () => {
    expect(parse(frame({ op: 0x0, payload: 'x' }))).toEqual([err('WS_UNEXPECTED_CONTINUATION', 1002)]);
    expect(parse(frame({ op: 0x0, payload: 'x', fin: false }))).toEqual([err('WS_UNEXPECTED_CONTINUATION', 1002)]);
  });

  it('RFC 6455 §5.4: a continuation frame after a completed message fails with 1002', () => {
    const events = parse([frame({ op: 0x1, payload: 'a', fin: false }), frame({ op: 0x0, payload: 'b' }), frame({ op: 0x0, payload: 'c' })]);
    expect(events).toEqual([textEvent('ab'), err('WS_UNEXPECTED_CONTINUATION', 1002)]);
  });

  it('RFC 6455 §5.4: a new text frame while a fragmented message is open fails with 1002', () => {
    const events = parse([frame({ op: 0x1, payload: 'a', fin: false }), frame({ op: 0x1, payload: 'b' })]);
    expect(events).toEqual([err('WS_EXPECTED_CONTINUATION', 1002)]);
  });

  it('RFC 6455 §5.4: a new binary frame while a fragmented text message is open fails with 1002', () => {
    const events = parse([frame({ op: 0x1, payload: 'a', fin: false }), frame({ op: 0x2, payload: 'b' })]);
    expect(events).toEqual([err('WS_EXPECTED_CONTINUATION', 1002)]);
    const events2 = parse([frame({ op: 0x2, payload: 'a', fin: false }), frame({ op: 0x9 }), frame({ op: 0x1, payload: 'b', fin: false })]);
    expect(events2).toEqual([['ping', ''], err('WS_EXPECTED_CONTINUATION', 1002)]);
  });

  it('RFC 6455 §5.4: empty fragments are allowed, including an empty final frame', () => {
    const events = parse([
      frame({ op: 0x1, fin: false }),
      frame({ op: 0x0, payload: 'ab', fin: false }),
      frame({ op: 0x0, fin: false }),
      frame({ op: 0x0 }),
    ]);
    expect(events).toEqual([textEvent('ab')]);
  });

  it('RFC 6455 §5.6: empty text and binary messages are delivered', () => {
    expect(parse([frame({ op: 0x1 }), frame({ op: 0x2 })])).toEqual([textEvent(''), binaryEvent(new Uint8Array(0))]);
  });

  it('RFC 6455 §5.4: messages after a fragmented one start afresh (new opcode, new fragment count)', () => {
    const events = parse(
      [
        frame({ op: 0x2, payload: 'a', fin: false }),
        frame({ op: 0x0, payload: 'b', fin: false }),
        frame({ op: 0x0, payload: 'c' }),
        frame({ op: 0x1, payload: 'd', fin: false }),
        frame({ op: 0x0, payload: 'e', fin: false }),
        frame({ op: 0x0, payload: 'f' }),
      ],
      { maxFragments: 3 },
    );
    expect(events).toEqual([binaryEvent(Buffer.from('abc')), textEvent('def')]);
  });
});

describe('FrameParser: payload length (RFC 6455 §5.2)', () => {
  it('RFC 6455 §5.2: a 16-bit length (126..65535) parses', () => {
    for (const n of [126, 127, 1000, 65535]) {
      const payload = Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));
      expect(parse(frame({ op: 0x2, payload }))).toEqual([binaryEvent(payload)]);
    }
  });

  it('RFC 6455 §5.2: a 64-bit length (65536 and above) parses', () => {
    for (const n of [65536, 70000]) {
      const payload = Buffer.from(Array.from({ length: n }, (_, i) => (i * 31) & 0xff));
      const bytes = frame({ op: 0x2, payload });
      expect(bytes[1]).toBe(0x80 | 127);
      expect(parse(bytes)).toEqual([binaryEvent(payload)]);
    }
  });

  it('RFC 6455 §5.2: a 64-bit length with the most significant bit set fails with 1002', () => {
    const events = parse(hex('82 ff 80 00 00 00 00 00 00 05'), { maxPayload: Number.MAX_SAFE_INTEGER });
    expect(events).toEqual([err('WS_LENGTH_OVERFLOW', 1002)]);
    const events2 = parse(hex('81 ff ff ff ff ff ff ff ff ff'), { maxPayload: Number.MAX_SAFE_INTEGER });
    expect(events2).toEqual([err('WS_LENGTH_OVERFLOW', 1002)]);
  });

  it('RFC 6455 §5.2: a 64-bit length just under the top bit is not a length overflow (it is too big: 1009)', () => {
    expect(parse(hex('82 ff 7f ff ff ff ff ff ff ff'))).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
  });
});

describe('FrameParser: UTF-8 in text messages (RFC 6455 §8.1)', () => {
  it('RFC 6455 §8.1: a text message with invalid UTF-8 fails with 1007', () => {
    for (const bad of ['ff', 'c0 80', 'ed a0 80', 'f4 90 80 80', '80', 'e2 28 a1', 'f8 88 80 80 80']) {
      expect(parse(frame({ op: 0x1, payload: hex(`61 ${bad} 62`) }))).toEqual([err('WS_INVALID_UTF8', 1007)]);
    }
  });

  it('RFC 6455 §8.1: a text message ending inside a code point fails with 1007', () => {
    expect(parse(frame({ op: 0x1, payload: hex('61 e2 82') }))).toEqual([err('WS_INVALID_UTF8', 1007)]);
    const events = parse([frame({ op: 0x1, payload: hex('61 f0 9f'), fin: false }), frame({ op: 0x0, payload: hex('98') })]);
    expect(events).toEqual([err('WS_INVALID_UTF8', 1007)]);
  });

  it('RFC 6455 §8.1: a binary message is never checked as UTF-8', () => {
    const payload = hex('ff fe c0 80 ed a0 80');
    expect(parse(frame({ op: 0x2, payload }))).toEqual([binaryEvent(payload)]);
  });

  it('RFC 6455 §8.1: a code point split across fragments is fine', () => {
    // "€" = E2 82 AC and "😀" = F0 9F 98 80, each split at every possible place.
    for (const whole of [hex('e2 82 ac'), hex('f0 9f 98 80'), hex('c3 a9')]) {
      for (let cut = 1; cut < whole.length; cut++) {
        const events = parse([
          frame({ op: 0x1, payload: Buffer.concat([Buffer.from('x'), whole.subarray(0, cut)]), fin: false }),
          frame({ op: 0x9 }),
          frame({ op: 0x0, payload: Buffer.concat([whole.subarray(cut), Buffer.from('y')]) }),
        ]);
        expect(events).toEqual([['ping', ''], ['message', 'text', `78${whole.toString('hex')}79`]]);
      }
    }
  });

  it('RFC 6455 §8.1: a code point split over three fragments is fine', () => {
    const events = parse([
      frame({ op: 0x1, payload: hex('f0'), fin: false }),
      frame({ op: 0x0, payload: hex('9f 98'), fin: false }),
      frame({ op: 0x0, payload: hex('80') }),
    ]);
    expect(events).toEqual([['message', 'text', 'f09f9880']]);
  });

  it('RFC 6455 §8.1 (fail fast): a fragmented text message whose first fragment has a bad byte fails on that fragment, before FIN', () => {
    const { parser, sink } = setup();
    parser.push(frame({ op: 0x1, payload: hex('68 65 6c ff 6c 6f'), fin: false }));
    expect(sink.events).toEqual([err('WS_INVALID_UTF8', 1007)]);
    parser.push(frame({ op: 0x0, payload: 'rest' }));
    expect(sink.events).toEqual([err('WS_INVALID_UTF8', 1007)]);
  });

  it('RFC 6455 §8.1 (fail fast): an impossible continuation across fragments fails on the fragment that carries it', () => {
    const { parser, sink } = setup();
    parser.push(frame({ op: 0x1, payload: hex('61 ed'), fin: false }));
    expect(sink.events).toEqual([]);
    // ED A0 would be a UTF-16 surrogate.
    parser.push(frame({ op: 0x0, payload: hex('a0'), fin: false }));
    expect(sink.events).toEqual([err('WS_INVALID_UTF8', 1007)]);
  });

  it('RFC 6455 §8.1 (fail fast): a bad byte early in a large text frame fails before the rest of the frame arrives', () => {
    const payload = Buffer.alloc(10_000, 0x61);
    payload[5] = 0xff;
    const bytes = frame({ op: 0x1, payload });
    const { parser, sink } = setup();
    // Header (2 + 2 + 4 key) and the first 100 payload bytes only.
    parser.push(bytes.subarray(0, 108));
    expect(sink.events).toEqual([err('WS_INVALID_UTF8', 1007)]);
  });

  it('RFC 6455 §8.1: long valid text (native validation path) with multi-byte characters is accepted', () => {
    const text = 'héllo wörld € 😀 '.repeat(200);
    expect(parse(frame({ op: 0x1, payload: text }))).toEqual([textEvent(text)]);
  });
});

describe('FrameParser: close frames (RFC 6455 §5.5.1, §7.4)', () => {
  it('RFC 6455 §5.5.1: an empty close frame is reported with code 1005 and an empty reason', () => {
    expect(parse(frame({ op: 0x8 }))).toEqual([['close', 1005, '']]);
  });

  it('RFC 6455 §5.5.1: a close frame with a 1-byte payload fails with 1002', () => {
    expect(parse(frame({ op: 0x8, payload: hex('03') }))).toEqual([err('WS_INVALID_CLOSE_PAYLOAD', 1002)]);
  });

  it('RFC 6455 §5.5.1: a close frame with a code and a UTF-8 reason is reported', () => {
    expect(parse(frame({ op: 0x8, payload: closeBody(1000, 'bye') }))).toEqual([['close', 1000, 'bye']]);
    expect(parse(frame({ op: 0x8, payload: closeBody(4000, 'café 😀') }))).toEqual([['close', 4000, 'café 😀']]);
    const long = 'é'.repeat(61) + 'a'; // 123 bytes: the most a close reason may hold
    expect(parse(frame({ op: 0x8, payload: closeBody(1001, long) }))).toEqual([['close', 1001, long]]);
  });

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`RFC 6455 §7.4.1: close code ${code} may not appear on the wire and fails with 1002`, () => {
      expect(parse(frame({ op: 0x8, payload: closeBody(code) }))).toEqual([err('WS_INVALID_CLOSE_CODE', 1002)]);
      expect(parse(frame({ op: 0x8, payload: closeBody(code, 'reason') }))).toEqual([err('WS_INVALID_CLOSE_CODE', 1002)]);
    });
  }

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    it(`RFC 6455 §7.4: close code ${code} is accepted`, () => {
      expect(parse(frame({ op: 0x8, payload: closeBody(code) }))).toEqual([['close', code, '']]);
    });
  }

  it('RFC 6455 §5.5.1: a close reason that is not UTF-8 fails with 1007', () => {
    for (const bad of [hex('ff'), hex('c3'), hex('ed a0 80'), Buffer.concat([Buffer.alloc(60, 0x61), hex('c0 80')])]) {
      expect(parse(frame({ op: 0x8, payload: closeBody(1000, bad) }))).toEqual([err('WS_INVALID_UTF8', 1007)]);
    }
  });

  it('RFC 6455 §5.5.1: a close frame interrupting a fragmented message is reported and the parser stops', () => {
    const events = parse([
      frame({ op: 0x1, payload: 'par', fin: false }),
      frame({ op: 0x8, payload: closeBody(1000) }),
      frame({ op: 0x0, payload: 'tial' }),
    ]);
    expect(events).toEqual([['close', 1000, '']]);
  });
});

describe('FrameParser: limits', () => {
  it('maxPayload: a message of exactly maxPayload bytes is accepted', () => {
    expect(parse(frame({ op: 0x2, payload: Buffer.alloc(100, 1) }), { maxPayload: 100 })).toEqual([
      binaryEvent(Buffer.alloc(100, 1)),
    ]);
  });

  it('RFC 6455 §7.4.1 (1009): a message over maxPayload fails with 1009, decided from the 7-bit header alone', () => {
    const { parser, sink } = setup({ maxPayload: 100 });
    parser.push(hex('82 e5')); // masked binary, length 101; no key, no payload yet
    expect(sink.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
  });

  it('RFC 6455 §7.4.1 (1009): a 16-bit length over maxPayload fails from the header, before any payload', () => {
    const { parser, sink } = setup({ maxPayload: 1000 });
    parser.push(hex('81 fe 03 e9')); // length 1001
    expect(sink.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
  });

  it('RFC 6455 §7.4.1 (1009): a huge 64-bit frame fails from its header, before any payload is buffered', () => {
    const { parser, sink } = setup({ maxPayload: 1 << 20 });
    // 2^40 bytes announced; only the 10 header bytes are fed (not even the masking key).
    parser.push(hex('82 ff 00 00 01 00 00 00 00 00'));
    expect(sink.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
    expect(parser.stopped).toBe(true);
  });

  it('RFC 6455 §7.4.1 (1009): the header check also works when the header arrives byte by byte', () => {
    const { parser, sink } = setup({ maxPayload: 1 << 20 });
    const header = hex('82 ff 00 00 00 00 00 20 00 00');
    for (let i = 0; i < header.length - 1; i++) {
      parser.push(header.subarray(i, i + 1));
      expect(sink.events).toEqual([]);
    }
    parser.push(header.subarray(header.length - 1));
    expect(sink.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
  });

  it('maxPayload counts all fragments of a message together', () => {
    const ok = parse(
      [frame({ op: 0x2, payload: Buffer.alloc(6), fin: false }), frame({ op: 0x0, payload: Buffer.alloc(4) })],
      { maxPayload: 10 },
    );
    expect(ok).toEqual([binaryEvent(Buffer.alloc(10))]);

    const { parser, sink } = setup({ maxPayload: 10 });
    parser.push(frame({ op: 0x1, payload: 'abcdef', fin: false }));
    parser.push(frame({ op: 0x0, payload: 'ghi', fin: false }));
    expect(sink.events).toEqual([]);
    // Only the header of the third fragment: 9 + 2 > 10.
    parser.push(hex('80 82'));
    expect(sink.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
  });

  it('maxPayload applies per message: consecutive messages each up to the limit are fine', () => {
    const events = parse(
      [frame({ op: 0x2, payload: Buffer.alloc(10) }), frame({ op: 0x2, payload: Buffer.alloc(10) }), frame({ op: 0x9, payload: 'x' })],
      { maxPayload: 10 },
    );
    expect(events).toEqual([binaryEvent(Buffer.alloc(10)), binaryEvent(Buffer.alloc(10)), ['ping', '78']]);
  });

  it('maxPayload does not count interleaved control frames', () => {
    const events = parse(
      [
        frame({ op: 0x1, payload: 'abcde', fin: false }),
        frame({ op: 0x9, payload: 'pingpingpingping' }),
        frame({ op: 0x0, payload: 'fghij' }),
      ],
      { maxPayload: 10 },
    );
    expect(events).toEqual([['ping', Buffer.from('pingpingpingping').toString('hex')], textEvent('abcdefghij')]);
  });

  it('RFC 6455 §7.4.1 (1008): a message in more frames than maxFragments fails with 1008', () => {
    const frames = (count: number): Buffer[] =>
      Array.from({ length: count }, (_, i) => frame({ op: i === 0 ? 0x1 : 0x0, payload: 'x', fin: i === count - 1 }));
    expect(parse(frames(3), { maxFragments: 3 })).toEqual([textEvent('xxx')]);
    expect(parse(frames(4), { maxFragments: 3 })).toEqual([err('WS_TOO_MANY_FRAGMENTS', 1008)]);
  });

  it('RFC 6455 §7.4.1 (1008): the fragment limit is hit before the final frame arrives (no FIN needed)', () => {
    const { parser, sink } = setup({ maxFragments: 2 });
    parser.push(frame({ op: 0x2, fin: false }));
    parser.push(frame({ op: 0x0, fin: false }));
    expect(sink.events).toEqual([]);
    parser.push(frame({ op: 0x0, fin: false }));
    expect(sink.events).toEqual([err('WS_TOO_MANY_FRAGMENTS', 1008)]);
  });

  it('maxFragments does not count control frames', () => {
    const events = parse(
      [frame({ op: 0x1, payload: 'a', fin: false }), frame({ op: 0x9 }), frame({ op: 0xa }), frame({ op: 0x0, payload: 'b' })],
      { maxFragments: 2 },
    );
    expect(events).toEqual([['ping', ''], ['pong', ''], textEvent('ab')]);
  });
});

describe('FrameParser: stopping', () => {
  it('RFC 6455 §5.5.1: after a close frame the parser ignores further input, even in the same chunk', () => {
    const { parser, sink } = setup();
    parser.push(Buffer.concat([frame({ op: 0x8, payload: closeBody(1000) }), frame({ op: 0x1, payload: 'late' }), frame({ op: 0x9 })]));
    expect(sink.events).toEqual([['close', 1000, '']]);
    expect(parser.stopped).toBe(true);
    parser.push(frame({ op: 0x1, payload: 'later' }));
    parser.push(frame({ op: 0x8 }));
    parser.push(hex('ff ff ff'));
    expect(sink.events).toEqual([['close', 1000, '']]);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('RFC 6455 §7.1.7: after a protocol error the parser ignores further input and reports nothing more', () => {
    const { parser, sink } = setup();
    parser.push(Buffer.concat([frame({ op: 0x1, payload: 'ok' }), frame({ op: 0x3 }), frame({ op: 0x1, payload: 'never' })]));
    expect(sink.events).toEqual([textEvent('ok'), err('WS_UNKNOWN_OPCODE', 1002)]);
    expect(parser.stopped).toBe(true);
    parser.push(frame({ op: 0x1, payload: 'x' }));
    parser.push(frame({ op: 0x0, payload: 'x' }));
    parser.push(frame({ op: 0x8 }));
    expect(sink.events).toEqual([textEvent('ok'), err('WS_UNKNOWN_OPCODE', 1002)]);
  });

  it('stop() drops everything buffered and no event follows', () => {
    const { parser, sink } = setup();
    const bytes = frame({ op: 0x1, payload: 'hello' });
    parser.push(bytes.subarray(0, 5));
    parser.stop();
    parser.push(bytes.subarray(5));
    expect(sink.events).toEqual([]);
    expect(parser.stopped).toBe(true);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('an empty chunk is a no-op', () => {
    const { parser, sink } = setup();
    parser.push(Buffer.alloc(0));
    parser.push(frame({ op: 0x1, payload: 'a' }));
    parser.push(Buffer.alloc(0));
    expect(sink.events).toEqual([textEvent('a')]);
  });

  it('bufferedBytes counts bytes held for an incomplete frame', () => {
    const { parser } = setup();
    parser.push(hex('81'));
    expect(parser.bufferedBytes).toBe(1);
    parser.push(hex('85 37 fa 21 3d 7f 9f 4d 51 58'));
    expect(parser.bufferedBytes).toBe(0);
  });
});

describe('FrameParser: zero-copy receive', () => {
  it('a single-frame binary message that arrives in one chunk is a view of that chunk', () => {
    const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 3) & 0xff));
    const encoded = frame({ op: 0x2, payload });
    const backing = new ArrayBuffer(encoded.length);
    const chunk = Buffer.from(backing);
    encoded.copy(chunk);
    const { parser, sink } = setup();
    parser.push(chunk);
    expect(sink.messages).toHaveLength(1);
    const data = sink.messages[0] as Buffer;
    expect(data.buffer).toBe(backing);
    expect(data.byteOffset).toBe(2 + 2 + 4);
    expect(data.length).toBe(300);
    expect(Buffer.compare(data, payload)).toBe(0);
  });

  it('a large (64-bit length) single-frame message in one chunk is a view of that chunk too', () => {
    const payload = Buffer.alloc(70_000, 0x42);
    const encoded = frame({ op: 0x2, payload });
    const backing = new ArrayBuffer(encoded.length + 16);
    const chunk = Buffer.from(backing, 3, encoded.length); // unaligned on purpose
    encoded.copy(chunk);
    const { parser, sink } = setup();
    parser.push(chunk);
    const data = sink.messages[0] as Buffer;
    expect(data.buffer).toBe(backing);
    expect(data.byteOffset).toBe(3 + 2 + 8 + 4);
    expect(Buffer.compare(data, payload)).toBe(0);
  });

  it('an unmasked (client role) single-frame text message in one chunk is a view of that chunk', () => {
    const encoded = frame({ op: 0x1, payload: 'zero-copy', mask: false });
    const backing = new ArrayBuffer(encoded.length);
    const chunk = Buffer.from(backing);
    encoded.copy(chunk);
    const sink = new Recorder();
    new FrameParser(sink, CLIENT).push(chunk);
    expect((sink.messages[0] as Buffer).buffer).toBe(backing);
    expect((sink.messages[0] as Buffer).toString()).toBe('zero-copy');
  });
});

describe('FrameParser: a frame that spans chunks is assembled in a buffer of its own', () => {
  /** `bytes` cut at the given offsets, each piece in an ArrayBuffer of its own. */
  function cut(bytes: Buffer, at: readonly number[]): Buffer[] {
    const out: Buffer[] = [];
    let from = 0;
    for (const to of [...at, bytes.length]) {
      out.push(Buffer.from(bytes.subarray(from, to)));
      from = to;
    }
    return out;
  }
  const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7 + (i >>> 9)) & 0xff));

  afterAll(() => {
    useSimd(true);
  });

  for (const [mode, on] of [['WebAssembly SIMD', true], ['JS unmasking', false]] as const) for (const at of [[20], [1000, 1001, 40_000], [14, 15, 16, 17, 69_999], [2, 5, 9, 13, 64 * 1024]]) {
    it(`RFC 6455 §5.3 (${mode}): a masked 70,000-byte frame cut at ${at.join(', ')} arrives unmasked and whole, in a buffer that is none of the chunks`, () => {
      useSimd(on);
      const chunks = cut(frame({ op: 0x2, payload }), at);
      const { parser, sink } = setup();
      for (const c of chunks) parser.push(c);
      expect(sink.errors).toEqual([]);
      expect(sink.messages).toHaveLength(1);
      const data = sink.messages[0] as Buffer;
      expect(Buffer.compare(data, payload)).toBe(0);
      // Keeping the message does not keep any socket chunk alive.
      for (const c of chunks) expect(data.buffer).not.toBe(c.buffer);
    });
  }

  it('RFC 6455 §5.4: fragments that each span chunks are joined in order', () => {
    const a = payload.subarray(0, 30_000);
    const b = payload.subarray(30_000);
    const stream = Buffer.concat([frame({ op: 0x2, payload: a, fin: false }), frame({ op: 0x0, payload: b, key: [1, 2, 3, 4] })]);
    const events = parse(cut(stream, [7, 10_000, 30_005, 30_020, 50_000]));
    expect(events).toEqual([binaryEvent(payload)]);
  });

  it('RFC 6455 §8.1: invalid UTF-8 in a text frame that spans chunks fails with 1007 on the chunk that carries it, before the frame ends', () => {
    const text = Buffer.alloc(50_000, 0x61);
    text[20_000] = 0xff;
    const chunks = cut(frame({ op: 0x1, payload: text }), [100, 20_000, 40_000]); // the bad byte is stream byte 8 + 20,000
    const { parser, sink } = setup();
    parser.push(chunks[0] as Buffer);
    expect(sink.events).toEqual([]);
    parser.push(chunks[1] as Buffer);
    expect(sink.events).toEqual([]);
    parser.push(chunks[2] as Buffer);
    expect(sink.events).toEqual([err('WS_INVALID_UTF8', 1007)]);
    expect(parser.stopped).toBe(true);
    parser.push(chunks[3] as Buffer);
    expect(sink.events).toHaveLength(1);
  });

  it('RFC 6455 §8.1: a code point split between chunks of a spanning text frame is valid', () => {
    const text = `${'a'.repeat(99)}€${'b'.repeat(5000)}`;
    // 2 + 2 + 4 header bytes; the euro sign's 3 bytes start at payload byte 99.
    const events = parse(cut(frame({ op: 0x1, payload: text }), [8 + 100, 8 + 101]));
    expect(events).toEqual([textEvent(text)]);
  });

  it('stop() in the middle of a spanning frame drops it; the parser ignores what follows', () => {
    const chunks = cut(frame({ op: 0x2, payload }), [30_000]);
    const { parser, sink } = setup();
    parser.push(chunks[0] as Buffer);
    parser.stop();
    parser.push(chunks[1] as Buffer);
    expect(sink.events).toEqual([]);
  });
});

describe('FrameParser: robustness', () => {
  /** mulberry32: a small seeded PRNG so every run sees the same bytes. */
  function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function checkInvariants(events: Event[]): void {
    const terminal = events.findIndex((e) => e[0] === 'close' || e[0] === 'error');
    if (terminal !== -1) expect(terminal).toBe(events.length - 1);
  }

  it('RFC 6455 §7.1.7: the parser never throws on random bytes and reports at most one terminal event, last', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = prng(seed);
      const length = Math.floor(rand() * 400);
      const bytes = Buffer.from(Array.from({ length }, () => Math.floor(rand() * 256)));
      for (const options of [SERVER, CLIENT, { ...SERVER, allowRsv1: true, maxPayload: 64, maxFragments: 2 }]) {
        const sink = new Recorder();
        const parser = new FrameParser(sink, options);
        expect(() => {
          let at = 0;
          while (at < bytes.length) {
            const size = 1 + Math.floor(rand() * 16);
            parser.push(Buffer.from(bytes.subarray(at, at + size)));
            at += size;
          }
        }).not.toThrow();
        checkInvariants(sink.events);
      }
    }
  });

  it('RFC 6455 §7.1.7: the parser never throws on mutated valid streams', () => {
    const base = Buffer.concat([
      frame({ op: 0x1, payload: 'héllo', fin: false }),
      frame({ op: 0x9, payload: 'p' }),
      frame({ op: 0x0, payload: ' wörld' }),
      frame({ op: 0x2, payload: Buffer.alloc(200, 7) }),
      frame({ op: 0x8, payload: closeBody(1000, 'done') }),
    ]);
    for (let seed = 1; seed <= 500; seed++) {
      const rand = prng(seed * 7919);
      const bytes = Buffer.from(base);
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      const sink = new Recorder();
      const parser = new FrameParser(sink, SERVER);
      expect(() => parser.push(bytes)).not.toThrow();
      checkInvariants(sink.events);
    }
  });
});

describe('FrameParser: a whole frame read at once (the direct path) gives what the general path gives', () => {
  /**
   * Events and error reasons of `stream` fed in one piece, where each whole small data frame is
   * read straight from the chunk, and byte by byte, where every frame goes through the general
   * path (a 1-byte chunk never holds a whole frame).
   */
  function both(stream: Buffer, options: Partial<ParserOptions> = {}, sink: () => Recorder = () => new Recorder()) {
    const feed = (pieces: Buffer[]) => {
      const s = sink();
      const parser = new FrameParser(s, { ...SERVER, ...options });
      for (const piece of pieces) parser.push(piece);
      return { events: s.events, reasons: s.errors.map((e) => e.message) };
    };
    return { whole: feed([Buffer.from(stream)]), bytewise: feed([...stream].map((b) => Buffer.of(b))) };
  }

  it('every 7- and 16-bit payload length, text and binary, several frames to a chunk', () => {
    const lengths = [0, 1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 124, 125, 126, 127, 128, 511, 512, 513, 4096, 65535];
    const frames = lengths.flatMap((n, i) => [
      frame({ op: 0x2, payload: Buffer.alloc(n, i + 1), key: [i, 0x80, 0xff, 0x11] }),
      frame({ op: 0x1, payload: 'é'.repeat(n >> 1) + 'a'.repeat(n & 1) }),
    ]);
    const { whole, bytewise } = both(Buffer.concat(frames));
    expect(whole.events).toEqual(lengths.flatMap((n, i) => [binaryEvent(Buffer.alloc(n, i + 1)), textEvent('é'.repeat(n >> 1) + 'a'.repeat(n & 1))]));
    expect(whole).toEqual(bytewise);
  });

  it('RFC 6455 §8.1: a bad byte and a code point cut at the end of a whole text frame fail as on the general path', () => {
    for (const bad of [Buffer.from([0x61, 0xff, 0x62]), Buffer.from([0x61, 0xe2, 0x82]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.concat([Buffer.alloc(300, 0x61), Buffer.from([0xc3])])]) {
      const stream = Buffer.concat([frame({ op: 0x1, payload: 'ok' }), frame({ op: 0x1, payload: bad }), frame({ op: 0x1, payload: 'never' })]);
      const { whole, bytewise } = both(stream);
      expect(whole.events).toEqual([textEvent('ok'), err('WS_INVALID_UTF8', 1007)]);
      expect(whole).toEqual(bytewise);
    }
    const cut = both(frame({ op: 0x1, payload: Buffer.from([0x61, 0xe2, 0x82]) }));
    expect(cut.whole.reasons).toEqual(['text message ends inside a UTF-8 sequence']);
    const badByte = both(frame({ op: 0x1, payload: Buffer.from([0x61, 0xff]) }));
    expect(badByte.whole.reasons).toEqual(['text message is not valid UTF-8']);
  });

  it('maxPayload holds for a whole small frame: one byte over fails with 1009, exactly at it passes', () => {
    const at = both(frame({ op: 0x2, payload: Buffer.alloc(10, 1) }), { maxPayload: 10 });
    expect(at.whole.events).toEqual([binaryEvent(Buffer.alloc(10, 1))]);
    const over = both(Buffer.concat([frame({ op: 0x2, payload: Buffer.alloc(11, 1) }), frame({ op: 0x2, payload: 'x' })]), { maxPayload: 10 });
    expect(over.whole.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
    expect(over.whole).toEqual(over.bytewise);
    const sixteen = both(frame({ op: 0x1, payload: 'a'.repeat(300) }), { maxPayload: 299 });
    expect(sixteen.whole.events).toEqual([err('WS_MESSAGE_TOO_BIG', 1009)]);
  });

  it('RFC 6455 §5.4: a whole text or binary frame while a fragmented message is open fails with 1002', () => {
    for (const op of [0x1, 0x2]) {
      const stream = Buffer.concat([frame({ op: 0x2, payload: 'part', fin: false }), frame({ op, payload: 'new' })]);
      const { whole, bytewise } = both(stream);
      expect(whole.events).toEqual([err('WS_EXPECTED_CONTINUATION', 1002)]);
      expect(whole).toEqual(bytewise);
    }
  });

  it('RFC 6455 §5.1, §5.2: unmasked, RSV1 (with and without permessage-deflate) and 64-bit-length frames keep the general rules', () => {
    expect(both(frame({ op: 0x2, payload: 'x', mask: false })).whole.events).toEqual([err('WS_UNMASKED_FRAME', 1002)]);
    const rsv = frame({ op: 0x2, payload: 'x', rsv: 4 });
    expect(both(rsv).whole.events).toEqual([err('WS_RESERVED_BITS', 1002)]);
    const compressed: boolean[] = [];
    const sink = () =>
      Object.assign(new Recorder(), {
        onMessage(this: Recorder, data: Buffer, isText: boolean, isCompressed: boolean) {
          compressed.push(isCompressed);
          Recorder.prototype.onMessage.call(this, data, isText);
        },
      });
    const deflated = both(Buffer.concat([rsv, frame({ op: 0x2, payload: 'y' })]), { allowRsv1: true }, sink);
    expect(deflated.whole.events).toEqual([binaryEvent(Buffer.from('x')), binaryEvent(Buffer.from('y'))]);
    expect(compressed).toEqual([true, false, true, false]);
    const long = both(frame({ op: 0x2, payload: 'z', len: 64 }));
    expect(long.whole.events).toEqual([binaryEvent(Buffer.from('z'))]);
    expect(long.whole).toEqual(long.bytewise);
  });

  it('a sink that pauses, stops or feeds the parser from onMessage sees the same as on the general path', () => {
    const stream = Buffer.concat([frame({ op: 0x1, payload: 'a' }), frame({ op: 0x2, payload: 'b' }), frame({ op: 0x1, payload: 'c' })]);
    let parser: FrameParser | null = null;
    const pausing = () =>
      Object.assign(new Recorder(), {
        onMessage(this: Recorder, data: Buffer, isText: boolean) {
          Recorder.prototype.onMessage.call(this, data, isText);
          parser?.pause();
        },
      });
    const sink = pausing();
    parser = new FrameParser(sink, SERVER);
    parser.push(Buffer.from(stream));
    expect(sink.events).toEqual([textEvent('a')]);
    expect(parser.bufferedBytes).toBe(stream.length - 7);
    parser.resume();
    expect(sink.events).toEqual([textEvent('a'), binaryEvent(Buffer.from('b'))]);
    parser.resume();
    parser.resume();
    expect(sink.events).toEqual([textEvent('a'), binaryEvent(Buffer.from('b')), textEvent('c')]);
    expect(parser.bufferedBytes).toBe(0);

    const stopping = new Recorder();
    const stopper: FrameParser = new FrameParser(
      Object.assign(stopping, {
        onMessage(this: Recorder, data: Buffer, isText: boolean) {
          Recorder.prototype.onMessage.call(this, data, isText);
          stopper.stop();
        },
      }),
      SERVER,
    );
    stopper.push(Buffer.from(stream));
    stopper.push(frame({ op: 0x1, payload: 'after' }));
    expect(stopping.events).toEqual([textEvent('a')]);
    expect(stopper.stopped).toBe(true);
  });

  it('streaming mode still announces a whole small message as a stream', () => {
    const events: string[] = [];
    const sink = () =>
      Object.assign(new Recorder(), {
        onStreamStart: (isText: boolean) => events.push(`start ${isText}`),
        onStreamData: (data: Buffer) => events.push(`data ${data.toString()}`),
        onStreamEnd: () => events.push('end'),
      });
    const { whole } = both(frame({ op: 0x1, payload: 'hi' }), { streaming: true }, sink);
    expect(whole.events).toEqual([]);
    expect(events.slice(0, 3)).toEqual(['start true', 'data hi', 'end']);
  });

  it('the same events whole and byte by byte for mutated streams of small frames (differential)', () => {
    const base = Buffer.concat([
      frame({ op: 0x1, payload: 'héllo' }),
      frame({ op: 0x2, payload: Buffer.alloc(40, 3) }),
      frame({ op: 0x9, payload: 'p' }),
      frame({ op: 0x1, payload: 'ü'.repeat(70) }),
      frame({ op: 0x2, payload: 'frag', fin: false }),
      frame({ op: 0x0, payload: 'ment' }),
      frame({ op: 0x2 }),
      frame({ op: 0x8, payload: closeBody(1000, 'done') }),
    ]);
    let state = 12345;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 4294967296;
    };
    for (let seed = 1; seed <= 400; seed++) {
      const bytes = Buffer.from(base);
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      for (const options of [{}, { maxPayload: 64 }, { allowRsv1: true }]) {
        const { whole, bytewise } = both(bytes, options);
        expect(whole, `seed ${seed} ${JSON.stringify(options)}`).toEqual(bytewise);
      }
    }
  });
});

describe('atRest: a parser that reports it holds nothing can be replaced by a fresh one', () => {
  // What the connection does (its heartbeat sweep lets an at-rest parser go; the next bytes make a
  // new one): fed byte by byte, the parser is swapped for a new one every time it says it is at
  // rest, and the events must be those of one parser fed the same bytes. A parser that called
  // itself at rest while it held part of a header, a message, a UTF-8 sequence, a control frame
  // or a streamed message would lose it here.
  const frames = [
    frame({ op: 0x1, payload: 'héllo' }),
    frame({ op: 0x2, payload: Buffer.alloc(200, 7) }),
    frame({ op: 0x1, payload: 'h\u00e9', fin: false }),
    frame({ op: 0x9, payload: 'in between' }),
    frame({ op: 0x0, payload: '\u20ac!', fin: false }),
    frame({ op: 0x0, payload: Buffer.from([0xf0, 0x9f]), fin: false }),
    frame({ op: 0x0, payload: Buffer.from([0x98, 0x80]) }),
    frame({ op: 0xa, payload: 'pong' }),
    // A 64-bit length for a short payload: allowed (RFC 6455 §5.2 asks for the minimal length of
    // senders, and the parser takes any), and it walks the 8-byte length state.
    frame({ op: 0x2, payload: Buffer.alloc(300, 9), len: 64 }),
    frame({ op: 0x1, payload: '' }),
    frame({ op: 0x8, payload: closeBody(1000, 'done') }),
  ];
  const stream = Buffer.concat(frames);

  /** A recorder that also writes down streamed messages, each joined (splitting-independent). */
  class StreamRecorder extends Recorder {
    private parts: Buffer[] = [];
    private isText = false;
    onStreamStart(isText: boolean): void {
      this.isText = isText;
      this.parts = [];
    }
    onStreamData(data: Buffer): void {
      this.parts.push(Buffer.from(data));
    }
    onStreamEnd(): void {
      this.events.push(['message', this.isText ? 'text' : 'binary', Buffer.concat(this.parts).toString('hex')]);
    }
  }

  function swapping(bytes: Buffer, options: Partial<ParserOptions>): { events: Event[]; swaps: number; restAt: number[] } {
    const sink = options.streaming === true ? new StreamRecorder() : new Recorder();
    let parser = new FrameParser(sink, { ...SERVER, ...options });
    let swaps = 0;
    const restAt: number[] = [];
    for (let i = 0; i < bytes.length; i++) {
      parser.push(Buffer.of(bytes[i] as number));
      if (parser.atRest) {
        restAt.push(i + 1);
        parser = new FrameParser(sink, { ...SERVER, ...options });
        swaps++;
      }
    }
    return { events: sink.events, swaps, restAt };
  }

  function onceWhole(bytes: Buffer, options: Partial<ParserOptions>): Event[] {
    const sink = options.streaming === true ? new StreamRecorder() : new Recorder();
    new FrameParser(sink, { ...SERVER, ...options }).push(Buffer.from(bytes));
    return sink.events;
  }

  it('the same events, at rest only between whole frames outside a message', () => {
    for (const options of [{}, { streaming: true }]) {
      const { events, swaps, restAt } = swapping(stream, options);
      expect(events, JSON.stringify(options)).toEqual(onceWhole(stream, options));
      // At rest after: the first two messages, the whole fragmented message (not after its
      // first three frames nor the ping inside it), the pong, the 300-byte message and the
      // empty one. Never after the close frame (the parser stops).
      const ends: number[] = [];
      let at = 0;
      for (const f of frames.slice(0, -1)) {
        at += f.length;
        ends.push(at);
      }
      expect(restAt, JSON.stringify(options)).toEqual([ends[0], ends[1], ends[6], ends[7], ends[8], ends[9]]);
      expect(swaps).toBe(6);
    }
  });

  it('the same events for mutated streams (errors included), streaming or not, and a paused parser is never at rest', () => {
    let state = 777;
    const rand = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 4294967296;
    };
    // Flips land in the headers and short payloads, where they change the frames' meaning.
    const reach = stream.length - 320;
    for (let seed = 1; seed <= 120; seed++) {
      const bytes = Buffer.from(stream);
      const flips = 1 + Math.floor(rand() * 3);
      for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * reach)] = Math.floor(rand() * 256);
      for (const options of [{}, { maxPayload: 100 }, { streaming: true }]) {
        expect(swapping(bytes, options).events, `seed ${seed} ${JSON.stringify(options)}`).toEqual(onceWhole(bytes, options));
      }
    }
    const parser = new FrameParser(new Recorder(), SERVER);
    expect(parser.atRest).toBe(true);
    parser.pause();
    expect(parser.atRest).toBe(false);
    parser.resume();
    expect(parser.atRest).toBe(true);
    parser.stop();
    expect(parser.atRest).toBe(false);
  });
});
