import { describe, expect, expectTypeOf, it } from 'vitest';
import { Router, splitTarget, type RouteMatch, type RouteParams } from '../../src/router.js';

function router(...patterns: string[]): Router<string> {
  const r = new Router<string>();
  for (const p of patterns) r.add(p, p);
  return r;
}

/** The matched pattern and params (as a plain object), or null. */
function m(r: Router<string>, path: string): { pattern: string; params: Record<string, string> } | null {
  const found = r.match(path);
  if (found === undefined) return null;
  expect(found.value).toBe(found.pattern);
  return { pattern: found.pattern, params: { ...found.params } };
}

/** Routes a full request target the way the handler does: the query string takes no part. */
function route(r: Router<string>, target: string): { pattern: string; params: Record<string, string> } | null {
  return m(r, splitTarget(target).path);
}

describe('Router: exact routes', () => {
  it('RFC 3986 §3.3: an exact pattern matches exactly that path', () => {
    const r = router('/echo', '/a/b', '/');
    expect(m(r, '/echo')).toEqual({ pattern: '/echo', params: {} });
    expect(m(r, '/a/b')).toEqual({ pattern: '/a/b', params: {} });
    expect(m(r, '/')).toEqual({ pattern: '/', params: {} });
    expect(m(r, '/echo/')).toBeNull();
    expect(m(r, '/echoes')).toBeNull();
    expect(m(r, '/a')).toBeNull();
    expect(m(r, '/a/b/c')).toBeNull();
    expect(m(r, '')).toBeNull();
    expect(m(r, 'echo')).toBeNull();
  });

  it('RFC 3986 §6.2.2.1: paths are case-sensitive', () => {
    const r = router('/Echo');
    expect(m(r, '/Echo')).not.toBeNull();
    expect(m(r, '/echo')).toBeNull();
  });

  it('routes() lists every registered pattern with its value', () => {
    const r = new Router<number>();
    r.add('/a', 1);
    r.add('/b/:id', 2);
    r.add('/c/*', 3);
    expect(r.routes()).toEqual([
      { pattern: '/a', value: 1 },
      { pattern: '/b/:id', value: 2 },
      { pattern: '/c/*', value: 3 },
    ]);
  });

  it('the matched value is the one registered for the pattern', () => {
    class A {}
    class B {}
    const r = new Router<typeof A | typeof B>();
    r.add('/a', A);
    r.add('/b/:x', B);
    expect(r.match('/a')?.value).toBe(A);
    expect(r.match('/b/1')?.value).toBe(B);
  });
});

describe('Router: params', () => {
  it('a named param matches one whole non-empty segment', () => {
    const r = router('/rooms/:room', '/users/:user/posts/:post');
    expect(m(r, '/rooms/lobby')).toEqual({ pattern: '/rooms/:room', params: { room: 'lobby' } });
    expect(m(r, '/users/7/posts/42')).toEqual({ pattern: '/users/:user/posts/:post', params: { user: '7', post: '42' } });
    expect(m(r, '/rooms/')).toBeNull();
    expect(m(r, '/rooms')).toBeNull();
    expect(m(r, '/rooms/a/b')).toBeNull();
    expect(m(r, '/users/7/posts')).toBeNull();
  });

  it('RFC 3986 §2.1: param values are percent-decoded', () => {
    const r = router('/rooms/:room');
    expect(m(r, '/rooms/hello%20world')?.params).toEqual({ room: 'hello world' });
    expect(m(r, '/rooms/caf%C3%A9')?.params).toEqual({ room: 'café' });
    expect(m(r, '/rooms/a%2Fb')?.params).toEqual({ room: 'a/b' });
    expect(m(r, '/rooms/%F0%9F%98%80')?.params).toEqual({ room: '😀' });
    expect(m(r, '/rooms/100%25')?.params).toEqual({ room: '100%' });
    expect(m(r, '/rooms/a+b')?.params).toEqual({ room: 'a+b' });
  });

  it('RFC 3986 §2.1: invalid percent-encoding in a param does not match', () => {
    const r = router('/rooms/:room');
    for (const bad of ['/rooms/%', '/rooms/%zz', '/rooms/%E0%A4%A', '/rooms/%C3', '/rooms/%ED%A0%80', '/rooms/abc%2']) {
      expect(m(r, bad), bad).toBeNull();
    }
  });

  it('params are a plain record with no inherited keys', () => {
    const r = router('/x/:id');
    const found = r.match('/x/1') as RouteMatch<string>;
    expect(Object.keys(found.params)).toEqual(['id']);
    expect('toString' in found.params).toBe(false);
  });

  it('two patterns sharing a param position keep their own param names', () => {
    const r = router('/:a/x', '/:b/y');
    expect(m(r, '/v/x')).toEqual({ pattern: '/:a/x', params: { a: 'v' } });
    expect(m(r, '/v/y')).toEqual({ pattern: '/:b/y', params: { b: 'v' } });
  });

  it('a param named __proto__ is stored as an ordinary key', () => {
    const r = router('/p/:__proto__');
    const found = r.match('/p/polluted') as RouteMatch<string>;
    expect(Object.getOwnPropertyDescriptor(found.params, '__proto__')?.value).toBe('polluted');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('Router: trailing wildcard', () => {
  it("'/files/*' matches '/files/' and deeper paths, with the rest under '*', but not '/files'", () => {
    const r = router('/files/*');
    expect(m(r, '/files/')).toEqual({ pattern: '/files/*', params: { '*': '' } });
    expect(m(r, '/files/a')).toEqual({ pattern: '/files/*', params: { '*': 'a' } });
    expect(m(r, '/files/a/b')).toEqual({ pattern: '/files/*', params: { '*': 'a/b' } });
    expect(m(r, '/files/a/b/')).toEqual({ pattern: '/files/*', params: { '*': 'a/b/' } });
    expect(m(r, '/files')).toBeNull();
    expect(m(r, '/filesx/a')).toBeNull();
    expect(m(r, '/other/a')).toBeNull();
  });

  it("RFC 3986 §2.1: the wildcard's rest is percent-decoded; invalid encoding does not match", () => {
    const r = router('/files/*');
    expect(m(r, '/files/a%20b/c%C3%A9')?.params).toEqual({ '*': 'a b/cé' });
    expect(m(r, '/files/a/%zz')).toBeNull();
  });

  it("'/*' matches every path", () => {
    const r = router('/*');
    expect(m(r, '/')?.params).toEqual({ '*': '' });
    expect(m(r, '/anything/at/all')?.params).toEqual({ '*': 'anything/at/all' });
  });

  it('params before a wildcard are kept', () => {
    const r = router('/rooms/:room/*');
    expect(m(r, '/rooms/r1/a/b')).toEqual({ pattern: '/rooms/:room/*', params: { room: 'r1', '*': 'a/b' } });
    expect(m(r, '/rooms/r1/')).toEqual({ pattern: '/rooms/:room/*', params: { room: 'r1', '*': '' } });
    expect(m(r, '/rooms/r1')).toBeNull();
  });
});

describe('Router: precedence and backtracking', () => {
  it('at each segment a static match beats a param, which beats a wildcard', () => {
    const r = router('/a/*', '/a/:x', '/a/new');
    expect(m(r, '/a/new')?.pattern).toBe('/a/new');
    expect(m(r, '/a/other')).toEqual({ pattern: '/a/:x', params: { x: 'other' } });
    expect(m(r, '/a/other/deep')).toEqual({ pattern: '/a/*', params: { '*': 'other/deep' } });
    expect(m(r, '/a/')).toEqual({ pattern: '/a/*', params: { '*': '' } });
  });

  it('precedence does not depend on registration order', () => {
    for (const order of [
      ['/a/new', '/a/:x', '/a/*'],
      ['/a/*', '/a/new', '/a/:x'],
      ['/a/:x', '/a/*', '/a/new'],
    ]) {
      const r = router(...order);
      expect(m(r, '/a/new')?.pattern, order.join(' ')).toBe('/a/new');
      expect(m(r, '/a/zzz')?.pattern, order.join(' ')).toBe('/a/:x');
      expect(m(r, '/a/zzz/1')?.pattern, order.join(' ')).toBe('/a/*');
    }
  });

  it("backtracks: when the static branch '/a/b/c' dead-ends, '/a/:x/d' wins", () => {
    const r = router('/a/b/c', '/a/:x/d');
    expect(m(r, '/a/b/c')).toEqual({ pattern: '/a/b/c', params: {} });
    expect(m(r, '/a/b/d')).toEqual({ pattern: '/a/:x/d', params: { x: 'b' } });
  });

  it("backtracks from a static branch to '/a/:x/c' when the static branch only has a longer route", () => {
    const r = router('/a/b/c/d', '/a/:x/c');
    expect(m(r, '/a/b/c')).toEqual({ pattern: '/a/:x/c', params: { x: 'b' } });
    expect(m(r, '/a/b/c/d')).toEqual({ pattern: '/a/b/c/d', params: {} });
  });

  it('backtracks from a param branch to a wildcard, dropping the param value it had captured', () => {
    const r = router('/a/:x/:y/end', '/a/*');
    expect(m(r, '/a/1/2/end')).toEqual({ pattern: '/a/:x/:y/end', params: { x: '1', y: '2' } });
    expect(m(r, '/a/1/2/other')).toEqual({ pattern: '/a/*', params: { '*': '1/2/other' } });
  });

  it('backtracks through several levels and keeps only the params of the winning route', () => {
    const r = router('/s/:p/s2/x', '/s/s1/:q/y', '/:r/s1/s2/z');
    expect(m(r, '/s/s1/s2/x')).toEqual({ pattern: '/s/:p/s2/x', params: { p: 's1' } });
    expect(m(r, '/s/s1/s2/y')).toEqual({ pattern: '/s/s1/:q/y', params: { q: 's2' } });
    expect(m(r, '/s/s1/s2/z')).toEqual({ pattern: '/:r/s1/s2/z', params: { r: 's' } });
    expect(m(r, '/s/s1/s2/w')).toBeNull();
  });

  it('a deeper wildcard in the static branch beats a shallower one', () => {
    const r = router('/a/*', '/a/b/*');
    expect(m(r, '/a/b/c')).toEqual({ pattern: '/a/b/*', params: { '*': 'c' } });
    expect(m(r, '/a/c/d')).toEqual({ pattern: '/a/*', params: { '*': 'c/d' } });
  });
});

describe('Router: query strings and request targets', () => {
  it('RFC 3986 §3.4: the query string never takes part in matching', () => {
    const r = router('/echo', '/rooms/:room', '/files/*');
    expect(route(r, '/echo?x=1')?.pattern).toBe('/echo');
    expect(route(r, '/echo?')?.pattern).toBe('/echo');
    expect(route(r, '/rooms/lobby?token=a/b')).toEqual({ pattern: '/rooms/:room', params: { room: 'lobby' } });
    expect(route(r, '/files/a/b?c=/d')).toEqual({ pattern: '/files/*', params: { '*': 'a/b' } });
    expect(route(r, '/echo/?x')).toBeNull();
  });

  it('RFC 9112 §3.2.2: absolute-form targets route by their path', () => {
    const r = router('/x', '/', '/rooms/:room');
    expect(route(r, 'http://h/x?y')?.pattern).toBe('/x');
    expect(route(r, 'https://host.example:8443/rooms/r1?z=1')).toEqual({ pattern: '/rooms/:room', params: { room: 'r1' } });
    expect(route(r, 'http://h')?.pattern).toBe('/');
    expect(route(r, 'http://h?x=/x')?.pattern).toBe('/');
  });

  it('splitTarget: origin-form targets', () => {
    expect(splitTarget('/a/b?c=d&e')).toEqual({ path: '/a/b', query: 'c=d&e' });
    expect(splitTarget('/a')).toEqual({ path: '/a', query: '' });
    expect(splitTarget('/?')).toEqual({ path: '/', query: '' });
    expect(splitTarget('/a?b?c')).toEqual({ path: '/a', query: 'b?c' });
  });

  it('splitTarget: absolute-form targets', () => {
    expect(splitTarget('http://h/x?y')).toEqual({ path: '/x', query: 'y' });
    expect(splitTarget('ws://h:80/a/b')).toEqual({ path: '/a/b', query: '' });
    expect(splitTarget('http://h')).toEqual({ path: '/', query: '' });
    expect(splitTarget('http://h?q=1')).toEqual({ path: '/', query: 'q=1' });
    expect(splitTarget('http://h?q=/not/path')).toEqual({ path: '/', query: 'q=/not/path' });
  });

  it('RFC 3986 §3.5: a fragment is dropped', () => {
    expect(splitTarget('/a#frag')).toEqual({ path: '/a', query: '' });
    expect(splitTarget('/a?b#frag')).toEqual({ path: '/a', query: 'b' });
    expect(splitTarget('http://h/x?y#z')).toEqual({ path: '/x', query: 'y' });
  });

  it('splitTarget: a target that is neither form does not match any route', () => {
    const r = router('/*');
    expect(route(r, '*')).toBeNull();
    expect(route(r, 'h/x')).toBeNull();
  });
});

describe('Router: malformed patterns and duplicates', () => {
  for (const bad of ['', 'echo', 'rooms/:id', '/a?b', '/a#b', '/*/x', '/a/*/b', '/a*', '/a/b*', '/:', '/a/:', '/:*', '/a:b', '/:id/:id', '/x:y/z']) {
    it(`a malformed pattern ${JSON.stringify(bad)} throws`, () => {
      expect(() => router(bad)).toThrow(TypeError);
    });
  }

  for (const [first, second] of [
    ['/a', '/a'],
    ['/rooms/:id', '/rooms/:room'],
    ['/files/*', '/files/*'],
    ['/:a/b/*', '/:c/b/*'],
  ] as const) {
    it(`a duplicate route (${first} then ${second}) throws`, () => {
      const r = router(first);
      expect(() => r.add(second, second)).toThrow(TypeError);
      // The first registration still matches.
      expect(r.routes()).toEqual([{ pattern: first, value: first }]);
    });
  }

  it('patterns that differ only by a trailing slash are distinct', () => {
    const r = router('/a', '/a/');
    expect(m(r, '/a')?.pattern).toBe('/a');
    expect(m(r, '/a/')?.pattern).toBe('/a/');
  });
});

describe('RouteParams', () => {
  it("RouteParams<'/rooms/:room/*'> is { room: string; '*': string }", () => {
    expectTypeOf<RouteParams<'/rooms/:room/*'>>().branded.toEqualTypeOf<{ room: string; '*': string }>();
    expectTypeOf<RouteParams<'/rooms/:room/*'>>().toExtend<{ room: string; '*': string }>();
    expectTypeOf<{ room: string; '*': string }>().toExtend<RouteParams<'/rooms/:room/*'>>();
    expectTypeOf<RouteParams<'/rooms/:room/*'>>().toHaveProperty('room').toEqualTypeOf<string>();
    expectTypeOf<RouteParams<'/rooms/:room/*'>>().toHaveProperty('*').toEqualTypeOf<string>();
  });

  it('RouteParams of other patterns', () => {
    expectTypeOf<RouteParams<'/echo'>>().toEqualTypeOf<{}>();
    expectTypeOf<RouteParams<'/rooms/:id'>>().toEqualTypeOf<{ id: string }>();
    expectTypeOf<RouteParams<'/files/*'>>().toEqualTypeOf<{ '*': string }>();
    expectTypeOf<RouteParams<'/u/:user/p/:post'>>().branded.toEqualTypeOf<{ user: string; post: string }>();
    expectTypeOf<RouteParams<'/u/:user/p/:post'>>().not.toHaveProperty('p');
    expectTypeOf<RouteParams<'/rooms/:id'>>().not.toHaveProperty('*');
  });

  it('matched params carry the names RouteParams declares', () => {
    const r = router('/rooms/:room/*');
    const params = r.match('/rooms/lobby/x/y')?.params as RouteParams<'/rooms/:room/*'>;
    expect(params.room).toBe('lobby');
    expect(params['*']).toBe('x/y');
  });
});
