/**
 * The route table's types (what `createWebSocketHandler` infers and checks) and the run-time
 * check that each route maps to a Behavior class.
 */
import { Behavior, type BehaviorClass } from './behavior.js';
import type { RouteParams } from './router.js';

/** A connected client when nothing more is known of its route: any behavior (`data` is `unknown`). */
export type Client = Behavior;

/**
 * URL pattern → behavior class: `{ '/echo': Echo, '/rooms/:id': Room, '/files/*': Files }`.
 * Written inline in `createWebSocketHandler(…)` (or as a `const` without a type annotation), the
 * table keeps its types: the handler knows each route's behavior. Annotated as `Routes`, it is
 * the loose table: any pattern, any behavior.
 */
export type Routes = Readonly<Record<string, BehaviorClass>>;

/** The instance type a behavior class makes (each member of a union of classes). */
type InstanceOf<C> = C extends { new (): infer B extends Client } ? B : never;

/**
 * The behavior instance type of a route table's route `P` (default: of any of its routes), with
 * that class's own `data` and `params`: `ClientOf<typeof routes, '/rooms/:room'>`.
 */
// The conditional on R is on purpose: TypeScript 5 measures R in `R[P]` as invariant, so a
// handler with a typed table was not assignable to `WebSocketHandler`; behind a conditional it
// compares the two structurally (test/package/typescript5.test.ts).
export type ClientOf<R extends Routes, P extends keyof R = keyof R> = R extends Routes ? InstanceOf<R[P]> : never;

/** The route patterns of a table (any string for the loose `Routes`). */
export type RoutePattern<R extends Routes> = keyof R & string;

/** What a behavior's `params` is typed as. */
type ParamsOf<C> = InstanceOf<C> extends { params: infer P } ? P : never;

/**
 * Shown, as a type error at the route's key, when a route's behavior reads params that its
 * pattern does not give (`Behavior<RouteParams<'/rooms/:id'>>` mounted at `'/rooms/:room'`):
 * `RouteParamsMismatch<'/rooms/:room', RouteParams<'/rooms/:id'>>`. Fix the pattern or the
 * behavior's `Params` so that the behavior reads only what its pattern gives.
 */
export interface RouteParamsMismatch<Pattern extends string, Reads> {
  "wsmount: this behavior's Params need params that this route's pattern does not give": {
    pattern: Pattern;
    gives: RouteParams<Pattern>;
    reads: Reads;
  };
}

/**
 * The route table as `createWebSocketHandler` checks it: each behavior's `Params` must accept
 * what its pattern gives (`RouteParams<pattern>`). A loose `Routes` table is not checked.
 */
export type CheckedRoutes<R extends Routes> = {
  [P in keyof R]: P extends string
    ? string extends P
      ? R[P]
      : RouteParams<P> extends ParamsOf<R[P]>
        ? R[P]
        : RouteParamsMismatch<P, ParamsOf<R[P]>>
    : R[P];
};


/**
 * A route's value, checked to be `Behavior` or a subclass: anything else would pass here and
 * crash the process at its first upgrade. `instanceof` also refuses a class from another copy of
 * wsmount (a second install in node_modules), rightly: the private fields this copy's handler
 * sets exist only on this copy's `Behavior`.
 */
export function behaviorClass(pattern: string, value: unknown): BehaviorClass {
  if (value === Behavior || (typeof value === 'function' && value.prototype instanceof Behavior)) return value as BehaviorClass;
  const route = `wsmount: route '${pattern}'`;
  if (value instanceof Behavior) {
    throw new TypeError(`${route} maps to an instance of ${value.constructor.name}; map it to the class itself: { '${pattern}': ${value.constructor.name} }`);
  }
  if (typeof value === 'function') {
    // An arrow function has no prototype, and takes its name from the route's key: call it what it is.
    const name = value.prototype === undefined || value.name === '' || value.name === pattern ? 'a function' : `'${value.name}'`;
    const copy = extendsForeignBehavior(value)
      ? ": it extends another copy of wsmount's Behavior (two installs in node_modules?); import Behavior from the same 'wsmount' as createWebSocketHandler"
      : '';
    throw new TypeError(`${route} maps to ${name}, which does not extend Behavior${copy || ": write class X extends Behavior { … } (import { Behavior } from 'wsmount')"}`);
  }
  throw new TypeError(`${route} maps to ${value === null ? 'null' : typeof value}, not a Behavior class: write { '${pattern}': X } where class X extends Behavior { … }`);
}

/** Whether a class extends a `Behavior` that is not this copy's (found by name and shape). */
function extendsForeignBehavior(cls: object): boolean {
  for (let c: unknown = Object.getPrototypeOf(cls); typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    if (c.name === 'Behavior' && typeof (c.prototype as { sendText?: unknown } | undefined)?.sendText === 'function') return true;
  }
  return false;
}
