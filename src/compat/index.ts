/**
 * `wsmount/ws`: a face shaped like the `ws` package, for the libraries built on it (graphql-ws,
 * tRPC, Yjs) and for code moving from ws. Mount a `WebSocketServer` on a route with `wsRoute`.
 */
export { WebSocket, type BinaryType, type ControlCallback, type EventHandler, type RawData, type SendCallback, type SendData, type SendOptions } from './socket.js';
export {
  WebSocketServer,
  type AddressInfo,
  type VerifyClient,
  type VerifyClientInfo,
  type WebSocketServerOptions,
  type WsPerMessageDeflateOptions,
} from './server.js';
export { WsConnection, wsRoute, type WsRouteClass, type WsRouteOptions } from './route.js';
export type {
  CloseEvent,
  Data,
  ErrorEvent,
  WebSocketEventTarget,
  Event,
  EventListenerLike,
  EventListenerOptions,
  MessageEvent,
  WebSocketEventMap,
} from './events.js';
export { WebSocket as default } from './socket.js';
