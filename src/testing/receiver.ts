/**
 * The read side of a test client (client.ts): the socket's bytes go through the same strict
 * parser the server uses, in the client role; data messages go to the inbox (inflated first when
 * they arrived compressed), and control frames and the socket's end go back to the client, which
 * owns the connection's state and everything it writes.
 */
import type { Buffer } from 'node:buffer';
import type { Duplex } from 'node:stream';
import { CloseCode } from '../protocol/constants.js';
import { ProtocolError } from '../protocol/errors.js';
import { FrameParser, type ParserSink } from '../protocol/parser.js';
import { decodeText } from '../protocol/utf8.js';
import type { ClientDeflate } from './deflate.js';
import { Inbox } from './inbox.js';
import type { CloseInfo, MessageInfo } from './types.js';

/** What the receiver reports to its client. */
export interface ReceiverOwner {
  onPing(data: Buffer): void;
  onPong(data: Buffer): void;
  /** The server's close frame: the parser has stopped. */
  onCloseFrame(code: number, reason: string): void;
  /** The server broke the protocol (or a limit): fail the connection with `error.closeCode`. */
  onProtocolError(error: ProtocolError): void;
  /** The socket's read side ended (FIN), after everything that arrived before it. */
  onEnd(): void;
  /** The socket is gone, after everything that arrived before it. */
  onClose(): void;
}

/**
 * How far a compressed payload may exceed `maxPayload` before the parser refuses it unread:
 * deflate may expand incompressible data (fixed Huffman codes take up to 9 bits a byte), and the
 * limit that matters is on the inflated message, enforced while inflating.
 */
function compressedLimit(maxPayload: number): number {
  return maxPayload + Math.ceil(maxPayload / 8) + 1024;
}

/** Reads a test client's socket; made by the client, which calls {@link ClientReceiver.start}. */
export class ClientReceiver {
  /** Messages received and not yet taken. */
  readonly messages: Inbox<MessageInfo> = new Inbox<MessageInfo>();
  readonly #socket: Duplex;
  readonly #owner: ReceiverOwner;
  readonly #parser: FrameParser;
  readonly #deflate: ClientDeflate | null;
  readonly #maxPayload: number;
  #compressedIn = 0;
  /** A compressed message is being inflated on the thread pool; the parser is paused meanwhile. */
  #inflating = false;
  /** The socket ended or closed while inflating: handled once the parser has read what came before. */
  #deferredEnd = false;
  #deferredClose = false;
  #closed = false;

  constructor(socket: Duplex, owner: ReceiverOwner, deflate: ClientDeflate | null, maxPayload: number) {
    this.#socket = socket;
    this.#owner = owner;
    this.#deflate = deflate;
    this.#maxPayload = maxPayload;
    const sink: ParserSink = {
      onMessage: (data, isText, compressed) => this.#onData(data, isText, compressed),
      onPing: (data) => owner.onPing(data),
      onPong: (data) => owner.onPong(data),
      onCloseFrame: (code, reason) => owner.onCloseFrame(code, reason),
      onProtocolError: (error) => owner.onProtocolError(error),
    };
    // RFC 6455 §5.1: a client must reject masked frames from the server. RFC 7692 §6.1: RSV1
    // marks a compressed message once permessage-deflate is agreed.
    this.#parser = new FrameParser(sink, {
      expectMasked: false,
      maxPayload: deflate === null ? maxPayload : compressedLimit(maxPayload),
      maxFragments: Number.MAX_SAFE_INTEGER,
      allowRsv1: deflate !== null,
    });
  }

  /** Starts reading: `early` holds bytes that arrived with the handshake response. */
  start(early: Buffer): void {
    const socket = this.#socket;
    socket.on('data', (chunk: Buffer) => this.#parser.push(chunk));
    socket.on('end', () => this.#onEnd());
    socket.on('close', () => this.#onClose());
    socket.on('error', () => {}); // a reset shows as 1006 in `closed`
    if (early.length > 0) this.#parser.push(early);
    if (socket.destroyed) this.#onClose();
  }

  /** Messages received compressed (RSV1 set, RFC 7692 §6). */
  get compressedIn(): number {
    return this.#compressedIn;
  }

  /** Stops parsing: nothing more is read from this connection. */
  stop(): void {
    this.#parser.stop();
  }

  /** The connection is gone: waits for messages end once those received are taken. */
  close(info: CloseInfo): void {
    this.messages.close(info);
  }

  #onData(data: Buffer, isText: boolean, compressed: boolean): void {
    const deflate = this.#deflate;
    if (!compressed || deflate === null) {
      // With deflate agreed the parser's limit has room for compressed payloads; this one is not.
      if (data.length > this.#maxPayload) {
        this.#fail(new ProtocolError('WS_MESSAGE_TOO_BIG', CloseCode.MessageTooBig, `message over maxPayload (${this.#maxPayload} bytes)`));
        return;
      }
      this.messages.push({ data: isText ? decodeText(data) : data, compressed: false });
      return;
    }
    this.#compressedIn++;
    const r = deflate.inflate(data, isText, this.#maxPayload);
    if (!(r instanceof Promise)) {
      this.#inflated(r, isText);
      return;
    }
    // On the thread pool: what follows waits in the parser, so messages stay in order.
    this.#parser.pause();
    this.#inflating = true;
    r.catch((error: unknown) => new ProtocolError('WS_INVALID_COMPRESSED_DATA', CloseCode.InvalidPayload, `inflating failed: ${String(error)}`)).then((v) => {
      this.#inflating = false;
      this.#inflated(v, isText);
      this.#parser.resume(); // may start another inflate
      if (this.#inflating) return;
      if (this.#deferredEnd) this.#onEnd();
      if (this.#deferredClose) this.#onClose();
    });
  }

  #inflated(result: Buffer | ProtocolError, isText: boolean): void {
    if (result instanceof ProtocolError) this.#fail(result);
    else this.messages.push({ data: isText ? decodeText(result) : result, compressed: true });
  }

  /** A violation found after the parser (inflating, sizes): the parser stops, the connection fails. */
  #fail(error: ProtocolError): void {
    this.#parser.stop();
    this.#owner.onProtocolError(error);
  }

  #onEnd(): void {
    if (this.#inflating) {
      this.#deferredEnd = true; // the parser still holds what arrived before the end
      return;
    }
    this.#deferredEnd = false;
    this.#parser.stop();
    this.#owner.onEnd();
  }

  #onClose(): void {
    if (this.#closed) return;
    if (this.#inflating) {
      this.#deferredClose = true;
      return;
    }
    this.#closed = true;
    this.#parser.stop();
    this.#owner.onClose();
  }
}
