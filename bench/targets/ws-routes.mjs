// The two routes of the ws-style targets, written once: ws itself (ws.mjs, deflate-ws.mjs) and
// wsmount's ws face (wsface.mjs) run exactly this code, on their own WebSocketServer class.
//   /echo       echoes every message: ws.send(data, { binary: isBinary })
//   /broadcast  the documented loop: every message to every client whose readyState is OPEN

/**
 * @param {typeof import('ws').WebSocketServer} WebSocketServer ws's, or wsmount/ws's
 * @param {{ OPEN: number }} WebSocket the class whose OPEN constant the loop compares with
 * @param {object} options the WebSocketServer options
 */
export function wsRoutes(WebSocketServer, WebSocket, options) {
  const echo = new WebSocketServer(options);
  const room = new WebSocketServer(options);

  echo.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      ws.send(data, { binary: isBinary });
    });
  });

  room.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      room.clients.forEach((client) => {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      });
    });
  });
  return { echo, room };
}
