// Issue 12: permessage-deflate at the type level (tsc runs this file; nothing executes it).
import {
  Behavior,
  type CompressionStats,
  type HandlerOptions,
  type NegotiatedExtensions,
  type NegotiatedPerMessageDeflate,
  PER_MESSAGE_DEFLATE_PRESET,
  type PerMessageDeflateOptions,
  createWebSocketHandler,
} from '../../src/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// A route's static: an object literal with plain numbers compiles (no `as const` needed), and so do booleans.
class Feed extends Behavior {
  static override perMessageDeflate = { threshold: 256, serverMaxWindowBits: 10, serverNoContextTakeover: false };
  override onOpen() {
    const pmd: NegotiatedPerMessageDeflate | null = this.extensions.perMessageDeflate;
    if (pmd !== null) {
      const bits: number = pmd.clientMaxWindowBits;
      const reset: boolean = pmd.serverNoContextTakeover;
      void bits;
      void reset;
    }
    // @ts-expect-error: what was negotiated is read-only
    this.extensions.perMessageDeflate = null;
  }
}
class Off extends Behavior {
  static override perMessageDeflate = false;
}
class On extends Behavior {
  static override perMessageDeflate = true;
}
// @ts-expect-error: not a setting: true, false or an object
class Wrong extends Behavior {
  static override perMessageDeflate = 'yes';
}
// @ts-expect-error: an object with no known field is refused at compile time too
class Misspelled extends Behavior {
  static override perMessageDeflate = { treshold: 10 };
}
void Wrong;
void Misspelled;

const handler = createWebSocketHandler({ '/feed': Feed, '/off': Off, '/on': On }, { perMessageDeflate: { level: 1, clientNoContextTakeover: true } });
createWebSocketHandler({ '/on': On }, { perMessageDeflate: true });
// @ts-expect-error: level is a number
createWebSocketHandler({ '/on': On }, { perMessageDeflate: { level: 'fast' } });

const options: PerMessageDeflateOptions = { threshold: 0 };
const handlerOptions: HandlerOptions = { perMessageDeflate: options };
void handlerOptions;

export const shapes: [
  Equal<ReturnType<typeof handler.stats>['compression'], CompressionStats>,
  Equal<CompressionStats[keyof CompressionStats], number>,
  Equal<Behavior['extensions'], NegotiatedExtensions>,
  Equal<typeof PER_MESSAGE_DEFLATE_PRESET.level, number>,
] = [true, true, true, true];
