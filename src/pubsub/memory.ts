/**
 * A backplane inside one process: several handlers linked as if they ran in separate processes
 * (for tests of an app that will scale out, and for several handlers on several ports). Delivery
 * is asynchronous, in publish order, like a real transport's.
 */
import type { Backplane, BackplaneLink, BackplaneNode } from './backplane.js';

/** The in-memory backplane, with a switch to rehearse an outage. */
export interface MemoryBackplane extends Backplane {
  /**
   * Takes the bus down (`false`: every publish is dropped and counted, as with Redis down) or
   * brings it back (`true`), telling every linked handler.
   */
  setConnected(up: boolean): void;
  /** Handlers linked now. */
  readonly nodes: number;
}

/**
 * A backplane that links handlers in this process: pass the same one to each
 * `createWebSocketHandler(routes, { backplane })`. Only topics with subscribers reach a handler.
 */
export function memoryBackplane(): MemoryBackplane {
  const topics = new Map<string, Set<BackplaneNode>>();
  const linked = new Set<BackplaneNode>();
  let up = true;
  let queue: { topic: string; message: Uint8Array }[] = [];
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    const batch = queue;
    queue = [];
    for (const { topic, message } of batch) {
      const nodes = topics.get(topic);
      if (nodes === undefined) continue;
      for (const node of nodes) node.receive(message);
    }
  };

  return {
    get nodes() {
      return linked.size;
    },
    setConnected(next: boolean): void {
      if (next === up) return;
      up = next;
      for (const node of linked) node.status(up, up ? undefined : 'the in-memory backplane was disconnected');
    },
    connect(node: BackplaneNode): BackplaneLink {
      linked.add(node);
      if (!up) node.status(false, 'the in-memory backplane was disconnected');
      const mine = new Set<string>();
      return {
        publish(topic, message) {
          if (!up) return false;
          queue.push({ topic, message });
          if (!scheduled) {
            scheduled = true;
            setImmediate(flush);
          }
          return true;
        },
        subscribe(topic) {
          mine.add(topic);
          let nodes = topics.get(topic);
          if (nodes === undefined) topics.set(topic, (nodes = new Set()));
          nodes.add(node);
        },
        unsubscribe(topic) {
          mine.delete(topic);
          const nodes = topics.get(topic);
          if (nodes === undefined) return;
          nodes.delete(node);
          if (nodes.size === 0) topics.delete(topic);
        },
        close() {
          for (const topic of mine) this.unsubscribe(topic);
          linked.delete(node);
          return Promise.resolve();
        },
      };
    },
  };
}
