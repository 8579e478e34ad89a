/**
 * Type-level tests of what a Behavior subclass writes: its statics (their literal types) and its
 * `data` (declared, with a starting value). tsc runs this file; every expected error below was
 * checked to fail for the reason its comment gives.
 */
import type { IncomingMessage } from 'node:http';
import { Backpressure, type BackpressurePolicy, Behavior, createWebSocketHandler, type RouteParams } from '../../src/index.js';

/** True when A and B are the same type (not merely assignable one way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// ---- statics ----

/** `Backpressure.Drop` keeps its literal type as an initializer: no `as const`, no annotation. */
class Prices extends Behavior {
  static override backpressure = Backpressure.Drop;
}
class Orders extends Behavior {
  static override backpressure = Backpressure.Close;
}
/** `readonly` keeps a bare literal too (the statics are read once, when the handler is built). */
class Quotes extends Behavior {
  static override readonly backpressure = 'drop';
  static override readonly rateLimit = false;
}
/** Arrays and numbers need nothing: `protocols` is a `readonly string[]`, a `string[]` fits. */
class Chat extends Behavior {
  static override protocols = ['chat.v2', 'chat.v1'];
  static override requireProtocol = false;
  static override rateLimit = { messages: 20, interval: 1000 };
  static override maxPayload = 64 * 1024;
  static override pingInterval = 0;
}
class RateOff extends Behavior {
  static override rateLimit = false as const;
}
export const staticTypes: [
  Equal<typeof Prices.backpressure, 'drop'>,
  Equal<typeof Orders.backpressure, 'close'>,
  Equal<(typeof Backpressure)[keyof typeof Backpressure], BackpressurePolicy>,
  Equal<typeof Quotes.backpressure, 'drop'>,
  Equal<typeof Chat.protocols, string[]>,
] = [true, true, true, true, true];
createWebSocketHandler({ '/prices': Prices, '/orders': Orders, '/quotes': Quotes, '/chat': Chat, '/off': RateOff });

// TypeScript widens a bare literal in a mutable class field (it does not take the base class's
// type as context), so these two are refused; the statics' docs name the forms above.
// @ts-expect-error: 'drop' is widened to string, which is not a BackpressurePolicy
class BareDrop extends Behavior {
  static override backpressure = 'drop';
}
// @ts-expect-error: false is widened to boolean, and true is not a rate limit
class BareFalse extends Behavior {
  static override rateLimit = false;
}
// @ts-expect-error: a policy that does not exist
class Block extends Behavior {
  static override backpressure: 'block' = 'block';
}
export const refused = [BareDrop, BareFalse, Block];

// ---- data ----

/** The simple case: no data, no annotations; `data` is `unknown`, so it cannot be misread. */
class Echo extends Behavior {
  override onText(text: string) {
    this.sendText(text);
    // @ts-expect-error: Echo never declared data: it is unknown, not something with a user
    void this.data.user;
  }
}

/** The pattern: declare `data` with its type and a starting value. */
class Room extends Behavior<RouteParams<'/rooms/:room'>> {
  override data = { user: '', joined: 0 };
  override verify(req: IncomingMessage) {
    this.data = { user: String(req.headers['x-user']), joined: Date.now() };
  }
  override onOpen() {
    this.sendText(`${this.data.user} joined ${this.params.room}`);
  }
}

/** Or "not yet" made explicit: the compiler then makes every reader check. */
interface Session {
  user: string;
  roles: string[];
}
class Admin extends Behavior {
  override data: Session | null = null;
  override async verify() {
    this.data = { user: 'ann', roles: ['admin'] };
  }
  override onText(text: string) {
    // @ts-expect-error: data may still be null here (verify could have failed to set it)
    this.sendText(this.data.user + text);
    if (this.data !== null) this.sendText(`${this.data.user}: ${text}`);
  }
}

class Unset extends Behavior {
  // @ts-expect-error: a declaration without a starting value is refused (strictPropertyInitialization): data would be read before it is set
  override data: { user: string };
}

/** `Behavior<Params, Data>` from 0.1 still compiles, and reading the undeclared data is refused. */
class OldStyle extends Behavior<RouteParams<'/rooms/:room'>, { user: string }> {
  override onOpen() {
    // @ts-expect-error: the second type argument no longer types data; declare the field instead
    this.sendText(this.data.user);
  }
}

export const dataTypes: [
  Equal<Echo['data'], unknown>,
  Equal<Room['data'], { user: string; joined: number }>,
  Equal<Admin['data'], Session | null>,
  Equal<Behavior['data'], unknown>,
] = [true, true, true, true];
export const classes = [Echo, Room, Admin, Unset, OldStyle];
