/** Shared by the mount tests: load a demo/mount example, open an undici WebSocket to it. */
import { within } from '../helpers/fixture.js';

/** Imports demo/mount/<name>.js (a non-literal specifier: the examples are plain JS). */
export async function loadExample<Module>(name: string): Promise<Module> {
  const url: string = new URL(`../../demo/mount/${name}.js`, import.meta.url).href;
  return (await import(url)) as Module;
}

export interface Closed {
  code: number;
  reason: string;
}

/** An open undici WebSocket with its messages queued and its close awaited. */
export interface OpenSocket {
  ws: WebSocket;
  next(): Promise<string>;
  closed: Promise<Closed>;
}

/** Node's built-in WebSocket (undici), opened within 5 s; each `next()` waits at most 5 s. */
export async function openWebSocket(url: string, protocol?: string): Promise<OpenSocket> {
  const ws = protocol === undefined ? new WebSocket(url) : new WebSocket(url, protocol);
  const queue: string[] = [];
  let wake: (() => void) | null = null;
  ws.addEventListener('message', (event) => {
    queue.push(String(event.data));
    wake?.();
  });
  const closed = new Promise<Closed>((resolve) => {
    ws.addEventListener('close', (event) => resolve({ code: event.code, reason: event.reason }));
  });
  await within(
    new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve());
      ws.addEventListener('error', () => reject(new Error(`could not open ${url}`)));
    }),
    5000,
    `opening ${url}`,
  );
  const next = async (): Promise<string> => {
    while (queue.length === 0) await within(new Promise<void>((resolve) => (wake = resolve)), 5000, `a message on ${url}`);
    return queue.shift() as string;
  };
  return { ws, next, closed };
}
