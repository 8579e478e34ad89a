import type { Buffer } from 'node:buffer';
import { CloseCode } from '../protocol/constants.js';
import type { Utf8Validator } from '../protocol/utf8.js';
import type { Inbound, MessageQueue } from './inbound.js';
import type { StreamedMessage } from './streamed-message.js';

/**
 * @internal The connection's state that most connections never use, or use only at their end:
 * the close handshake, a held close frame or pong, `drained()` waiters, the bound callbacks of
 * asynchronous hooks and the messages waiting for them, a `messages()` iterator, a message
 * received as a stream. One object, made the first time one of
 * these is set to anything but its default (`Sender.extras`); every field here would cost 8
 * bytes in every idle connection. Each class of the connection's chain reads and writes its own
 * fields through accessors of the old names, as with the flags (flags.ts). Data messages that
 * are neither streamed nor answered by a promise, and the heartbeat, touch none of it.
 */
export class Extras {
  // Sender (sender.ts)
  closeHeld: Buffer | null = null;
  heldPong: Buffer | null = null;
  drainWaiters: ((drained: boolean) => void)[] | null = null;
  streamDrainWaiter: ((drained: boolean) => void) | null = null;
  // Dispatcher (dispatch.ts)
  inbox: MessageQueue | null = null;
  backlog: Inbound | null = null;
  hookDoneBound: (() => void) | null = null;
  hookRejectedBound: ((error: unknown) => void) | null = null;
  drainRejectedBound: ((error: unknown) => void) | null = null;
  // StreamReceiver (stream-in.ts)
  incoming: StreamedMessage | null = null;
  current: StreamedMessage | null = null;
  waiting: StreamedMessage | null = null;
  inflatedBytes = 0;
  inflateDue: 'piece' | 'last' | null = null;
  utf8: Utf8Validator | null = null;
  inflatedOutBound: ((view: Buffer) => void) | null = null;
  // Connection (connection.ts)
  closeTimer: NodeJS.Timeout | null = null;
  closeCode: number = CloseCode.Abnormal;
  closeReason = '';
  /** The message rate limit's token bucket (a route with `rateLimit`): tokens left, and when it was last refilled (-1: never). */
  tokens = 0;
  refilledAt = -1;
}
