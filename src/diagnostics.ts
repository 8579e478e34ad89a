/**
 * The connection lifecycle on `node:diagnostics_channel`, for tracers and APM agents
 * (OpenTelemetry instrumentations, Datadog, Elastic…) to subscribe to without wrapping wsmount.
 *
 * Each event is published only while its channel has subscribers: with none, a lifecycle step
 * costs one `hasSubscribers` read and no message object is built.
 */
import type { Channel } from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';
import type { Behavior, UpgradeRequest, WebSocketTransport } from './behavior.js';
import type { RejectionCode } from './handshake/rejection.js';
import type { BackpressurePolicy } from './connection/types.js';
import type { ProtocolError } from './protocol/errors.js';
// Not an ES module import (src/builtins.ts says why).
const diagnosticsChannel = process.getBuiltinModule('node:diagnostics_channel');

/**
 * The channel names wsmount publishes on, in lifecycle order. Subscribe with
 * `diagnostics_channel.subscribe(DIAGNOSTICS_CHANNELS.open, (message) => …)`.
 */
export const DIAGNOSTICS_CHANNELS: {
  /** An upgrade request reached a handler: {@link UpgradeReceivedMessage}. */
  readonly upgrade: 'wsmount:upgrade';
  /** A handshake was answered with 101 (HTTP/2: 200): {@link HandshakeAcceptedMessage}. */
  readonly accepted: 'wsmount:handshake:accepted';
  /** A handshake was refused with an HTTP status: {@link HandshakeRejectedMessage}. */
  readonly rejected: 'wsmount:handshake:rejected';
  /** A connection is open; its `onOpen` runs next: {@link ConnectionOpenMessage}. */
  readonly open: 'wsmount:connection:open';
  /** The peer broke the protocol; the connection is failed with a close code: {@link ProtocolErrorMessage}. */
  readonly protocolError: 'wsmount:connection:protocol-error';
  /** A send passed `maxBackpressure` and was dropped (and with `'close'`, the peer closed): {@link BackpressureMessage}. */
  readonly backpressure: 'wsmount:connection:backpressure';
  /** A connection's socket is gone; its `onClose` runs next: {@link ConnectionCloseMessage}. */
  readonly close: 'wsmount:connection:close';
} = Object.freeze({
  upgrade: 'wsmount:upgrade',
  accepted: 'wsmount:handshake:accepted',
  rejected: 'wsmount:handshake:rejected',
  open: 'wsmount:connection:open',
  protocolError: 'wsmount:connection:protocol-error',
  backpressure: 'wsmount:connection:backpressure',
  close: 'wsmount:connection:close',
});

/** On {@link DIAGNOSTICS_CHANNELS}.upgrade: an upgrade request (or HTTP/2 extended CONNECT) reached a handler, before routing. */
export interface UpgradeReceivedMessage {
  request: UpgradeRequest;
  /** The byte stream the WebSocket would run on (a TCP/TLS socket, or an HTTP/2 stream). */
  socket: Duplex;
  transport: WebSocketTransport;
  /** The request path, without the query. */
  path: string;
  /** The route pattern it matched, or `null` (left to other listeners; a 404 when none answers). */
  route: string | null;
}

/** On {@link DIAGNOSTICS_CHANNELS}.accepted: the 101 (HTTP/2: 200) is written. */
export interface HandshakeAcceptedMessage {
  request: UpgradeRequest;
  /** The connection's behavior (its `id`, `route`, `params`, `protocol`, `extensions`, `remoteAddress`). */
  client: Behavior;
}

/** On {@link DIAGNOSTICS_CHANNELS}.rejected: the handshake is answered with an HTTP status and no WebSocket opens. */
export interface HandshakeRejectedMessage {
  request: UpgradeRequest;
  /** The route pattern, or `null` when no route matched (404). */
  route: string | null;
  /** The HTTP status sent (400, 403, 404, 426, 429, 500, 503…), its stable code and the message. */
  status: number;
  code: RejectionCode;
  message: string;
}

/** On {@link DIAGNOSTICS_CHANNELS}.open. */
export interface ConnectionOpenMessage {
  client: Behavior;
}

/** On {@link DIAGNOSTICS_CHANNELS}.protocolError: published before `onError`; the close code is `error.closeCode`. */
export interface ProtocolErrorMessage {
  client: Behavior;
  error: ProtocolError;
}

/** On {@link DIAGNOSTICS_CHANNELS}.backpressure: one message was not sent. */
export interface BackpressureMessage {
  client: Behavior;
  /** `'drop'`: the message was dropped, the connection stays; `'close'`: dropped, and the connection closes with 1008. */
  action: BackpressurePolicy;
  /** Size of the message that was not sent: its frame, header included (a message to be compressed: its bytes before compression). */
  bytes: number;
  /** Bytes waiting to be written at that moment, and the limit they would have passed. */
  bufferedAmount: number;
  maxBackpressure: number;
}

/** On {@link DIAGNOSTICS_CHANNELS}.close: the code and reason `onClose` gets next (1006: no close frame). */
export interface ConnectionCloseMessage {
  client: Behavior;
  code: number;
  reason: string;
}

/** The channels, made once. @internal */
export const channels: {
  readonly upgrade: Channel;
  readonly accepted: Channel;
  readonly rejected: Channel;
  readonly open: Channel;
  readonly protocolError: Channel;
  readonly backpressure: Channel;
  readonly close: Channel;
} = {
  upgrade: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.upgrade),
  accepted: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.accepted),
  rejected: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.rejected),
  open: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.open),
  protocolError: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.protocolError),
  backpressure: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.backpressure),
  close: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.close),
};
