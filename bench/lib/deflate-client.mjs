// The generator's client for the permessage-deflate scenario: the raw Client of wsclient.mjs
// (its socket, handshake and frame reader), offering permessage-deflate like a browser and
// checking what comes back:
//
// - the 101 must accept permessage-deflate with valid parameters;
// - every data message must arrive compressed (RSV1 on its first frame; RSV1 never on a
//   continuation or control frame): every message of the scenario is above both servers'
//   threshold (1 KiB), so an uncompressed one is a failure, not a cheaper path;
// - messages are inflated and compared with the expected plaintext (corpus[i % K], in order).
//   When the server keeps its compression context (ws's default), every message must be
//   inflated, through a window kept per connection; when it resets its context per message
//   (server_no_context_takeover, wsmount's default), each message stands alone and one in
//   `checkEvery` is inflated and compared, as the other scenarios sample payloads.
//
// What the client sends is compressed ahead of time (pmd.mjs sendCycle): the job writes slices.

import { Buffer } from 'node:buffer';
import { Client, OP, clientFrame } from './wsclient.mjs';
import { BROWSER_OFFER, SyncInflater, inflateOnce, parseAgreement } from './pmd.mjs';

export class DeflateClient extends Client {
  /**
   * @param {object} o
   * @param {Buffer[]} o.corpus the plaintexts expected back, in order, cyclically
   * @param {number} [o.checkEvery] inflate one message in this many when the server resets its context
   * @param {boolean} [o.oneMessage] this connection gets one message only: inflate it on its own
   *   (a first message never refers back) and keep no zlib state (10,000 idle connections)
   */
  constructor(o) {
    super({ extensions: o.offer ?? BROWSER_OFFER });
    this.corpus = o.corpus;
    this.expectOpcode = OP.TEXT;
    this.checkEvery = o.checkEvery ?? 16;
    this.oneMessage = o.oneMessage === true;
    this.agreement = null;
    this.inflater = null; // created on the first compressed message when the server keeps its context
    this.inMessage = false;
    this.msgCompressed = false;
    this.msgNeeded = false;
    this.msgFin = false;
    this.isData = false;
    this.parts = [];
    this.compressedMsgs = 0;
    this.wireBytes = 0; // compressed payload bytes of data messages
    this.inflated = 0; // messages inflated and compared
    this.sent = 0; // messages sent (the job's cursor into the send cycle)
  }

  async connect(port, path, timeoutMs) {
    await super.connect(port, path, timeoutMs);
    try {
      this.agreement = parseAgreement(this.extensionsAnswer);
    } catch (e) {
      this.destroy();
      throw e;
    }
    return this;
  }

  /** The server keeps its LZ77 window between messages: every message must be inflated. */
  get serverKeepsContext() {
    return !this.agreement.serverNoContextTakeover;
  }

  startFrame(buf, off) {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    if (b1 & 0x80) return this.fail(new Error('server frame is masked')), false;
    let len = b1 & 0x7f;
    if (len === 126) len = buf.readUInt16BE(off + 2);
    else if (len === 127) len = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
    const fin = (b0 & 0x80) !== 0;
    const rsv = b0 & 0x70;
    const opcode = b0 & 0x0f;
    this.opcode = opcode;
    this.need = len;
    this.inPayload = len > 0;
    this.checking = false;
    this.ctl = null;
    if (opcode === OP.TEXT || opcode === OP.BINARY) {
      if (this.inMessage) return this.fail(new Error('a new message started before the previous one ended')), false;
      if (rsv & 0x30) return this.fail(new Error('server frame has RSV2/RSV3 set')), false;
      if (opcode !== this.expectOpcode) return this.fail(new Error(`expected opcode ${this.expectOpcode}, got ${opcode}`)), false;
      if ((rsv & 0x40) === 0) {
        return this.fail(new Error(`the server sent a message uncompressed (RSV1 clear, first frame ${len} bytes); every message here is above the 1 KiB threshold`)), false;
      }
      this.isData = true;
      this.inMessage = true;
      this.msgCompressed = true;
      this.msgFin = fin;
      this.msgNeeded = this.serverKeepsContext || this.dataFrames % this.checkEvery === 0;
      this.parts = [];
      this.wireBytes += len;
      if (this.msgNeeded && len > 0) {
        this.ctl = Buffer.allocUnsafe(len);
        this.ctlFill = 0;
      }
    } else if (opcode === OP.CONT) {
      if (!this.inMessage) return this.fail(new Error('continuation frame outside a message')), false;
      if (rsv) return this.fail(new Error('RSV bits on a continuation frame (RFC 7692 §6.1: RSV1 only on the first frame)')), false;
      this.isData = true;
      this.msgFin = fin;
      this.wireBytes += len;
      if (this.msgNeeded && len > 0) {
        this.ctl = Buffer.allocUnsafe(len);
        this.ctlFill = 0;
      }
    } else if (opcode >= 0x8 && opcode <= 0xa) {
      if (rsv) return this.fail(new Error('RSV bits on a control frame')), false;
      if (!fin) return this.fail(new Error('fragmented control frame')), false;
      if (len > 125) return this.fail(new Error('control frame over 125 bytes')), false;
      this.isData = false;
      this.ctl = Buffer.allocUnsafe(len);
      this.ctlFill = 0;
    } else {
      return this.fail(new Error(`unknown opcode ${opcode}`)), false;
    }
    return true;
  }

  /** A frame is complete; returns true when it completed a data message. */
  endFrame() {
    if (this.isData) {
      if (this.ctl !== null) this.parts.push(this.ctl);
      this.ctl = null;
      if (!this.msgFin) return false;
      this.inMessage = false;
      const index = this.dataFrames;
      this.dataFrames++;
      this.compressedMsgs++;
      if (this.msgNeeded) {
        const expected = this.corpus[index % this.corpus.length];
        let plain;
        try {
          if (this.oneMessage && index > 0) throw new Error('more than the one message expected');
          if (this.serverKeepsContext && !this.oneMessage) {
            this.inflater ??= new SyncInflater(15);
            plain = this.inflater.inflate(this.parts);
          } else {
            plain = inflateOnce(this.parts);
          }
        } catch (e) {
          this.fail(new Error(`message ${index} does not inflate: ${e.message}`));
          return false;
        }
        this.parts = [];
        this.inflated++;
        if (!plain.equals(expected)) {
          this.fail(new Error(`message ${index} inflates to ${plain.length} bytes that differ from the ${expected.length} bytes sent`));
          return false;
        }
      }
      return true;
    }
    const opcode = this.opcode;
    const payload = this.ctl ?? Buffer.alloc(0);
    this.ctl = null;
    if (opcode === OP.PING) {
      if (!this.closing && this.socket.writable) this.socket.write(clientFrame(OP.PONG, payload));
    } else if (opcode === OP.CLOSE) {
      this.closeFrameSeen = true;
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (!this.closing) this.fail(new Error(`server sent close ${this.closeCode} unexpectedly${payload.length > 2 ? `: ${payload.subarray(2).toString()}` : ''}`));
      else this.socket.end();
    }
    return false;
  }

  /** Frees the inflater's zlib state (the job is over). */
  release() {
    this.inflater?.close();
    this.inflater = null;
  }
}
