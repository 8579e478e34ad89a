// wsmount's ws-compatible face (issue 13): the ws target's route code (targets/ws-routes.mjs,
// shared with targets/ws.mjs) run unchanged on `wsmount/ws` — the same 'connection' listeners,
// `ws.send(data, { binary: isBinary })` echo and documented broadcast loop — with the two
// WebSocketServers mounted on wsmount routes by wsRoute.
// wsmount's defaults stay on (heartbeat, backpressure…); only maxPayload is raised, as everywhere.

import { createWebSocketHandler } from '../../dist/index.js';
import { WebSocket, WebSocketServer, wsRoute } from '../../dist/compat/index.js';
import { MAX_PAYLOAD } from './common.mjs';
import { reportedOptions, serveHandler, version } from './wsmount-serve.mjs';
import { wsRoutes } from './ws-routes.mjs';

const options = { noServer: true, maxPayload: MAX_PAYLOAD, perMessageDeflate: false };
const { echo, room } = wsRoutes(WebSocketServer, WebSocket, options);

const handler = createWebSocketHandler({ '/echo': wsRoute(echo), '/broadcast': wsRoute(room) }, { maxPayload: MAX_PAYLOAD });
serveHandler(handler, { library: 'wsmount/ws', version, options: reportedOptions(handler.options) });
