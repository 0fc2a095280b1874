// Compiled (not run) by scripts/sdk-test with `tsc --noEmit --strict`: an app's use of the
// SDK, so wsloop.d.ts is checked to be valid and to describe the API the tests exercise.
import { Client, Room, WsloopError, isTerminalClose, type Delivery, type Joined } from '../wsloop.js';

const client = new Client('ws://127.0.0.1:8080/ws', {
  getToken: async () => 'a.b.c',
  backoffBaseMs: 100,
  backoffCapMs: 1000,
});
const room: Room = client.room('lobby');
const unsubscribe: () => void = room.on('message', (m: Delivery) => {
  const sender: string = m.sender_id;
  const offset: number | undefined = m.offset;
  void sender, offset;
});
unsubscribe();
room.on('reset', (reset) => void reset.reason);
client.on('disconnected', (e) => {
  const retry: boolean = e.reconnect && !isTerminalClose(e.code);
  void retry;
});
client.on('private', (m) => void m.recipient_id);

export async function chat(): Promise<number | undefined> {
  client.connect();
  const joined: Joined = await room.join();
  void joined.members;
  try {
    await client.private('bob', { text: 'psst' });
  } catch (error) {
    if (error instanceof WsloopError && error.code === 'recipient_not_connected') return undefined;
    throw error;
  }
  const ack = await room.publish({ text: 'hello' });
  client.disconnect();
  return ack.offset;
}
