/**
 * Topics in one handler: the index (topic -> its local subscribers, connection -> its topics),
 * publishing (framed once, the same bytes written to every subscriber, one write per socket per
 * batch, each under its connection's backpressure policy) and the link to a backplane that
 * carries publishes to other processes.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { type Behavior, type BinaryData, ReadyState } from '../behavior.js';
import type { Connection } from '../connection/connection.js';
import { batchThisTask } from '../connection/batch.js';
import type { Logger } from '../logger.js';
import { Opcode } from '../protocol/constants.js';
import { encodeFrame, encodeText, toBuffer } from '../protocol/framer.js';
import { OutgoingMessage } from '../connection/outgoing.js';
import type { Backplane, BackplaneLink, BackplaneNode, BackplaneStage, BackplaneStats } from './backplane.js';
import { decodeEnvelope, encodeEnvelope } from './envelope.js';
// Not an ES module import (src/builtins.ts says why).
const crypto = process.getBuiltinModule('node:crypto');

/** The longest topic name, in UTF-16 code units (JavaScript string length). */
export const MAX_TOPIC_LENGTH = 1024;

/** Options for `publish()` on a behavior. */
export interface PublishOptions {
  /** Deliver to the publishing connection too, when it is subscribed. Default `false`. */
  self?: boolean;
}

// ES2024's String.prototype.isWellFormed (in Node 20's V8; the compile target's lib is ES2023).
interface WellFormed {
  isWellFormed(): boolean;
}

/** Throws a `TypeError` naming the rule unless `topic` is a valid topic name. */
export function checkTopic(topic: unknown, fn: string): asserts topic is string {
  if (typeof topic === 'string' && topic.length > 0 && topic.length <= MAX_TOPIC_LENGTH && (topic as unknown as WellFormed).isWellFormed()) return;
  const what =
    typeof topic !== 'string'
      ? topic === null ? 'null' : typeof topic
      : topic.length === 0
        ? 'an empty string'
        : topic.length > MAX_TOPIC_LENGTH
          ? `a string of ${topic.length} characters`
          : 'a string with a lone surrogate (not valid Unicode)';
  throw new TypeError(`wsmount: ${fn}: a topic is a non-empty string of at most ${MAX_TOPIC_LENGTH} characters, not ${what}`);
}

function checkData(data: unknown, fn: string): asserts data is string | BinaryData {
  if (typeof data === 'string' || ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return;
  throw new TypeError(`wsmount: ${fn}: the message is a string (sent as text) or bytes (a Buffer, typed array or ArrayBuffer; sent as binary), not ${data === null ? 'null' : typeof data}`);
}

/** What the topics need from their handler. */
export interface TopicsOwner {
  readonly log: Logger;
  /** The `onSubscription` option, if given. */
  readonly onSubscription: ((client: Behavior, topic: string, count: number, previous: number) => void) | undefined;
}

/** A handler's topics and its backplane link. @internal */
export class Topics implements BackplaneNode {
  /** Topic -> the connections subscribed to it here; a topic with none has no entry. */
  private readonly index = new Map<string, Set<Connection>>();
  private readonly owner: TopicsOwner;
  /** Subscriptions in all (a connection on three topics counts three). */
  subscriptions = 0;
  /** `publish()` calls (handler's and behaviors'). */
  published = 0;
  readonly id: string;
  private readonly origin: Buffer;
  private link: BackplaneLink | null = null;
  private readonly counts: BackplaneStats | null;
  private downSince = 0;
  /** `droppedWhileDisconnected` when the current outage began. */
  private dropsAtOutage = 0;
  private closing: Promise<void> | null = null;

  constructor(owner: TopicsOwner, backplane: Backplane | undefined) {
    this.owner = owner;
    this.origin = crypto.randomBytes(8);
    this.id = this.origin.toString('hex');
    if (backplane === undefined) {
      this.counts = null;
      return;
    }
    this.counts = { connected: true, messagesOut: 0, messagesIn: 0, droppedWhileDisconnected: 0, outages: 0, errors: 0, malformed: 0 };
    const link: unknown = backplane.connect(this);
    const l = link as Partial<Record<keyof BackplaneLink, unknown>> | null;
    if (typeof l?.publish !== 'function' || typeof l.subscribe !== 'function' || typeof l.unsubscribe !== 'function' || typeof l.close !== 'function') {
      throw new TypeError('wsmount: the backplane\'s connect() returned no BackplaneLink (an object with publish, subscribe, unsubscribe and close)');
    }
    this.link = link as BackplaneLink;
  }

  get log(): Logger {
    return this.owner.log;
  }

  /** Local subscribers of `topic`. */
  count(topic: string): number {
    return this.index.get(topic)?.size ?? 0;
  }

  /** Topics with at least one local subscriber. */
  get size(): number {
    return this.index.size;
  }

  /** A connection's topics: a copy, so that no caller can change the index behind its back. */
  topicsOf(c: Connection | null): ReadonlySet<string> {
    return new Set(c?.topics);
  }

  /** Subscribes `c`; false if it already was (or is not open). */
  subscribe(c: Connection, topic: string): boolean {
    checkTopic(topic, 'subscribe()');
    if (c.state !== ReadyState.OPEN) return false;
    const mine = (c.topics ??= new Set());
    if (mine.has(topic)) return false;
    mine.add(topic);
    let set = this.index.get(topic);
    if (set === undefined) {
      set = new Set();
      this.index.set(topic, set);
      this.linkSubscribe(topic);
    }
    set.add(c);
    this.subscriptions++;
    this.changed(c, topic, set.size, set.size - 1);
    return true;
  }

  /** Unsubscribes `c`; false if it was not subscribed. */
  unsubscribe(c: Connection, topic: string): boolean {
    checkTopic(topic, 'unsubscribe()');
    if (c.topics === null || !c.topics.delete(topic)) return false;
    this.leave(c, topic);
    return true;
  }

  /** The connection closed: it leaves every topic (each change is reported). */
  dropAll(c: Connection): void {
    const mine = c.topics;
    if (mine === null || mine.size === 0) return;
    c.topics = null;
    for (const topic of mine) this.leave(c, topic);
  }

  private leave(c: Connection, topic: string): void {
    const set = this.index.get(topic);
    if (set === undefined || !set.delete(c)) return;
    this.subscriptions--;
    if (set.size === 0) {
      this.index.delete(topic);
      this.linkUnsubscribe(topic);
    }
    this.changed(c, topic, set.size, set.size + 1);
  }

  private changed(c: Connection, topic: string, count: number, previous: number): void {
    const hook = this.owner.onSubscription;
    if (hook === undefined) return;
    const failed = (error: unknown): void => this.owner.log.error(`wsmount: onSubscription threw (topic '${topic}', connection ${c.behavior.id})`, error);
    try {
      // An async callback (presence written to a database) may reject: logged, never unhandled.
      const result: unknown = hook(c.behavior, topic, count, previous);
      if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') (result as PromiseLike<unknown>).then(undefined, failed);
    } catch (error) {
      failed(error);
    }
  }

  /**
   * Publishes to every subscriber of `topic`: here (except `exclude`) and, through the
   * backplane, on every other process. Returns how many local subscribers it was written to.
   */
  publish(topic: string, data: string | BinaryData, exclude: Connection | null, fn: string): number {
    checkTopic(topic, fn);
    checkData(data, fn);
    this.published++;
    const set = this.index.get(topic);
    const local = set !== undefined && (set.size > 1 || !set.has(exclude as Connection));
    const link = this.link;
    if (link === null) {
      if (!local) return 0;
      const message = typeof data === 'string' ? new OutgoingMessage(Opcode.Text, encodeText(data)) : new OutgoingMessage(Opcode.Binary, encodeFrame(Opcode.Binary, toBuffer(data)));
      return this.deliver(set, message, exclude);
    }
    // Text is encoded once, into the envelope; the local frame takes its payload from there.
    const { envelope, payloadStart } = encodeEnvelope(this.origin, topic, typeof data === 'string' ? data : toBuffer(data));
    const opcode = typeof data === 'string' ? Opcode.Text : Opcode.Binary;
    const written = local ? this.deliver(set, new OutgoingMessage(opcode, encodeFrame(opcode, envelope.subarray(payloadStart))), exclude) : 0;
    this.send(link, topic, envelope);
    return written;
  }

  private send(link: BackplaneLink, topic: string, envelope: Buffer): void {
    const counts = this.counts as BackplaneStats;
    let sent: boolean;
    try {
      sent = link.publish(topic, envelope);
    } catch (error) {
      this.error(error, 'publish');
      sent = false;
    }
    if (sent) counts.messagesOut++;
    else counts.droppedWhileDisconnected++;
  }

  /** Writes one framed message (compressed once per parameter set where that is valid) to each open subscriber but `exclude`. */
  private deliver(set: Set<Connection>, message: OutgoingMessage, exclude: Connection | null): number {
    batchThisTask();
    let count = 0;
    for (const c of set) {
      if (c === exclude || c.state !== ReadyState.OPEN) continue;
      if (c.writeMessage(message) !== 'dropped') count++;
    }
    return count;
  }

  // ---- the backplane's side (BackplaneNode) ----------------------------------------------------

  /** A message from the backplane: drop our own echoes, deliver the rest to local subscribers. */
  receive(message: Uint8Array): void {
    const counts = this.counts;
    if (counts === null || this.closing !== null) return;
    const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    // Our own publish coming back: delivered locally when it was made.
    if (bytes.length >= 10 && this.origin.compare(bytes, 2, 10) === 0) return;
    const envelope = decodeEnvelope(bytes);
    if (envelope === null || (!envelope.binary && !isUtf8(envelope.payload))) {
      counts.malformed++;
      this.owner.log.debug(`wsmount: dropped a malformed ${bytes.length}-byte message from the backplane`);
      return;
    }
    counts.messagesIn++;
    const set = this.index.get(envelope.topic);
    if (set === undefined) return; // the last subscriber left while it was on its way
    const opcode = envelope.binary ? Opcode.Binary : Opcode.Text;
    this.deliver(set, new OutgoingMessage(opcode, encodeFrame(opcode, envelope.payload)), null);
  }

  status(up: boolean, reason?: unknown): void {
    const counts = this.counts;
    if (counts === null || counts.connected === up) return;
    counts.connected = up;
    if (!up) {
      counts.outages++;
      this.downSince = Date.now();
      this.dropsAtOutage = counts.droppedWhileDisconnected;
      const why = reason instanceof Error ? reason.message : reason === undefined ? '' : String(reason);
      this.owner.log.warn(
        `wsmount: the backplane is down${why === '' ? '' : ` (${why})`}: messages between this process and the others are lost until it is back (at-most-once delivery; local delivery goes on; counted in stats().backplane)`,
      );
    } else {
      const seconds = ((Date.now() - this.downSince) / 1000).toFixed(1);
      const lost = counts.droppedWhileDisconnected - this.dropsAtOutage;
      this.owner.log.warn(`wsmount: the backplane is back after ${seconds} s; ${lost} ${lost === 1 ? 'publish' : 'publishes'} to other processes ${lost === 1 ? 'was' : 'were'} lost meanwhile`);
    }
  }

  error(error: unknown, stage: BackplaneStage): void {
    if (this.counts !== null) this.counts.errors++;
    this.owner.log.debug(`wsmount: backplane error (${stage})`, error);
  }

  /** The backplane counters, or null without a backplane. */
  stats(): BackplaneStats | null {
    return this.counts === null ? null : { ...this.counts };
  }

  private linkSubscribe(topic: string): void {
    if (this.link === null || this.closing !== null) return;
    try {
      this.link.subscribe(topic);
    } catch (error) {
      this.error(error, 'subscribe');
    }
  }

  private linkUnsubscribe(topic: string): void {
    if (this.link === null || this.closing !== null) return;
    try {
      this.link.unsubscribe(topic);
    } catch (error) {
      this.error(error, 'subscribe');
    }
  }

  /** Leaves the backplane (publishes after this stay local). */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    const link = this.link;
    this.link = null;
    this.closing =
      link === null
        ? Promise.resolve()
        : Promise.resolve()
            .then(() => link.close())
            .catch((error: unknown) => this.error(error, 'connect'));
    return this.closing;
  }
}
