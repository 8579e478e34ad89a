/** The param names a pattern declares: `'/rooms/:room/*'` → `'room' | '*'`. */
type ParamNames<Pattern extends string> = Pattern extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<`/${Rest}`>
  : Pattern extends `${string}:${infer Name}`
    ? Name
    : Pattern extends `${string}/*`
      ? '*'
      : never;

/**
 * Route params a pattern declares: `RouteParams<'/rooms/:room/*'>` is `{ room: string; '*': string }`.
 * Use it for a behavior's params, `class Room extends Behavior<RouteParams<'/rooms/:room'>>`:
 * mounted at a pattern that does not give those params, the route table does not compile.
 */
export type RouteParams<Pattern extends string> = { [Name in ParamNames<Pattern>]: string };

/** A successful match. */
export interface RouteMatch<T> {
  value: T;
  /** The pattern as registered, e.g. `'/rooms/:id'`. */
  pattern: string;
  /** Decoded params; a trailing wildcard's rest of the path is under `'*'`. */
  params: Record<string, string>;
}

interface Route<T> {
  value: T;
  pattern: string;
  names: string[];
}

interface Node<T> {
  statics: Map<string, Node<T>> | null;
  param: Node<T> | null;
  wildcard: Route<T> | null;
  route: Route<T> | null;
}

function node<T>(): Node<T> {
  return { statics: null, param: null, wildcard: null, route: null };
}

/**
 * Splits a request target into its path and query string. Accepts origin-form (`/a?b`) and
 * absolute-form (`http://host/a?b`); the fragment, never sent by clients, is dropped.
 */
export function splitTarget(target: string): { path: string; query: string } {
  let t = target;
  if (t.charCodeAt(0) !== 0x2f) {
    const scheme = t.indexOf('://');
    if (scheme === -1) return { path: t, query: '' };
    const slash = t.indexOf('/', scheme + 3);
    const q0 = t.indexOf('?', scheme + 3);
    t = slash === -1 || (q0 !== -1 && q0 < slash) ? `/${q0 === -1 ? '' : t.slice(q0)}` : t.slice(slash);
  }
  const hash = t.indexOf('#');
  if (hash !== -1) t = t.slice(0, hash);
  const q = t.indexOf('?');
  return q === -1 ? { path: t, query: '' } : { path: t.slice(0, q), query: t.slice(q + 1) };
}

/**
 * Maps URL paths to values. Patterns: exact (`/echo`), named params (`/rooms/:id`, one whole
 * segment each), and a trailing wildcard (`/files/*`, one or more segments, possibly empty).
 * At every segment a static match beats a param, which beats a wildcard; the router backtracks
 * when the preferred branch fails further down. Matching is exact and case-sensitive; the query
 * string takes no part.
 */
export class Router<T> {
  private readonly root: Node<T> = node();
  private readonly all: Route<T>[] = [];

  /** Registers a pattern. Throws a `TypeError` that says what to write on a malformed pattern or a duplicate. */
  add(pattern: string, value: T): void {
    const route = `wsmount: route '${pattern}'`;
    if (pattern.charCodeAt(0) !== 0x2f) throw new TypeError(`${route}: a pattern starts with '/', like '/${pattern}'`);
    if (pattern.includes('?') || pattern.includes('#')) {
      throw new TypeError(`${route}: a pattern is a path only, without '?' or '#'; read the query string from this.query in the behavior`);
    }
    const segments = pattern.slice(1).split('/');
    const names: string[] = [];
    let at = this.root;
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i] as string;
      if (segment === '*') {
        if (i !== segments.length - 1) throw new TypeError(`${route}: '*' takes the rest of the path, so it can only be the last segment, as in '/files/*'`);
        if (at.wildcard !== null) throw new TypeError(`${route} ${sameAs(pattern, at.wildcard.pattern)}: keep one of them`);
        at.wildcard = { value, pattern, names };
        this.all.push(at.wildcard);
        return;
      }
      if (segment.charCodeAt(0) === 0x3a) {
        const name = segment.slice(1);
        if (name === '') throw new TypeError(`${route}: a parameter needs a name after the ':', as in '/rooms/:id'`);
        if (name === '*') throw new TypeError(`${route}: ':*' is not a parameter; write '*' alone for the rest of the path, or ':name'`);
        if (names.includes(name)) {
          throw new TypeError(`${route}: the parameter name '${name}' is used twice; give each parameter its own name (params holds one value per name)`);
        }
        names.push(name);
        at = at.param ??= node();
      } else {
        if (segment.includes('*') || segment.includes(':')) {
          throw new TypeError(`${route}: '*' and ':name' must each be a whole segment between slashes, as in '/files/*' or '/rooms/:id' (the segment here is '${segment}')`);
        }
        const statics = (at.statics ??= new Map());
        let next = statics.get(segment);
        if (next === undefined) statics.set(segment, (next = node()));
        at = next;
      }
    }
    if (at.route !== null) {
      throw new TypeError(`${route} ${sameAs(pattern, at.route.pattern)}: keep one of them`);
    }
    at.route = { value, pattern, names };
    this.all.push(at.route);
  }

  /** The best match for a path (no query string), or `undefined`. */
  match(path: string): RouteMatch<T> | undefined {
    if (path.charCodeAt(0) !== 0x2f) return undefined;
    const segments = path.slice(1).split('/');
    const values: string[] = [];
    return this.walk(this.root, segments, 0, values);
  }

  /** The first registered route as a match with no params (for a handler that takes every path), or `undefined`. */
  first(): RouteMatch<T> | undefined {
    const r = this.all[0];
    return r === undefined ? undefined : { value: r.value, pattern: r.pattern, params: NO_PARAMS };
  }

  /** Every registered value with its pattern. */
  routes(): { pattern: string; value: T }[] {
    return this.all.map((r) => ({ pattern: r.pattern, value: r.value }));
  }

  private walk(at: Node<T>, segments: string[], i: number, values: string[]): RouteMatch<T> | undefined {
    if (i === segments.length) {
      return at.route === null ? undefined : result(at.route, values, undefined);
    }
    const segment = segments[i] as string;
    const next = at.statics?.get(segment);
    if (next !== undefined) {
      const found = this.walk(next, segments, i + 1, values);
      if (found !== undefined) return found;
    }
    if (at.param !== null && segment !== '') {
      const decoded = decode(segment);
      if (decoded !== undefined) {
        values.push(decoded);
        const found = this.walk(at.param, segments, i + 1, values);
        if (found !== undefined) return found;
        values.pop();
      }
    }
    if (at.wildcard !== null) {
      const rest = decode(segments.slice(i).join('/'));
      if (rest !== undefined) return result(at.wildcard, values, rest);
    }
    return undefined;
  }
}

function sameAs(pattern: string, existing: string): string {
  return pattern === existing ? 'is registered twice' : `is the same route as '${existing}' (parameter names do not tell routes apart)`;
}

function decode(text: string): string | undefined {
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * @internal The params of every match of a route that declares none: one shared, frozen, empty
 * object (a connection builds its own `this.params` from it only if it reads it).
 */
export const NO_PARAMS: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>);

function result<T>(route: Route<T>, values: string[], rest: string | undefined): RouteMatch<T> {
  if (route.names.length === 0 && rest === undefined) return { value: route.value, pattern: route.pattern, params: NO_PARAMS };
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < route.names.length; i++) params[route.names[i] as string] = values[i] as string;
  if (rest !== undefined) params['*'] = rest;
  return { value: route.value, pattern: route.pattern, params };
}
