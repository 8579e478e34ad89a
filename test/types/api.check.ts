import http from 'node:http';
import { Behavior, createWebSocketHandler, HandshakeRejection, type RouteParams } from '../../src/index.js';

class Reverse extends Behavior {
  override onText(text: string) {
    this.sendText([...text].reverse().join('.'));
  }
}
class Room extends Behavior<RouteParams<'/rooms/:room'>, { user: string }> {
  static override protocols = ['chat.v2', 'chat.v1'];
  override async verify(req: http.IncomingMessage) {
    if (!req.headers.authorization) throw new HandshakeRejection(401, 'log in');
    this.data = { user: 'ann' };
  }
  override onOpen() {
    const room: string = this.params.room;
    const user: string = this.data.user;
    this.sendText(`${user}@${room}`);
  }
}
const sockets = createWebSocketHandler({ '/reverse': Reverse, '/rooms/:room': Room }, { origins: ['https://app.example'], maxPayload: 1 << 20 });
const server = http.createServer();
sockets.attach(server);
server.on('upgrade', sockets.handleUpgrade);
export { sockets };
