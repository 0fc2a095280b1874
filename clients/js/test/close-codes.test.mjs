// (5) Reconnect policy by close code: no retry after 1008 or 4000-4499, except 4001 with
// getToken; retry with backoff after 1001, 1006, 1011 and 4500-4999. A fake WebSocket
// closes with each code; the real server closes 1008 after rate-limit abuse.

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client, isTerminalClose } from '../wsloop.js';
import { FAST, FakeSocket, next, sleep, startServer } from './helpers.mjs';

const fake = { WebSocket: FakeSocket, userId: 'alice', backoffBaseMs: 1, backoffCapMs: 5 };
beforeEach(() => FakeSocket.reset());

async function afterClose(code, options = {}) {
  const client = new Client('ws://fake/ws', { ...fake, ...options });
  client.connect();
  await next(client, 'connected');
  const closed = next(client, 'disconnected');
  FakeSocket.last.drop(code, 'test');
  const ev = await closed;
  await sleep(100); // several backoff rounds at these settings
  const sockets = FakeSocket.all.length;
  client.disconnect();
  FakeSocket.reset();
  return { ev, sockets };
}

test('isTerminalClose', () => {
  for (const c of [1008, 4000, 4001, 4003, 4499]) assert.equal(isTerminalClose(c), true, String(c));
  for (const c of [1000, 1001, 1006, 1011, 3000, 4500, 4999]) assert.equal(isTerminalClose(c), false, String(c));
});

test('no retry after 1008 or 4000-4499', async () => {
  for (const code of [1008, 4000, 4001, 4003, 4401, 4499]) {
    const { ev, sockets } = await afterClose(code);
    assert.equal(ev.code, code);
    assert.equal(ev.reconnect, false, `${code}: told no reconnect`);
    assert.equal(sockets, 1, `${code}: no second socket`);
  }
});

test('retry after 1001, 1006, 1011 and 4500-4999', async () => {
  for (const code of [1001, 1006, 1011, 4500, 4999]) {
    const { ev, sockets } = await afterClose(code);
    assert.equal(ev.reconnect, true, `${code}: reconnects`);
    assert.ok(sockets >= 2, `${code}: a second socket (${sockets})`);
  }
});

test('4001 with getToken: reconnect with the fresh token', async () => {
  let n = 0;
  const getToken = () => `t${++n}`;
  const { ev, sockets } = await afterClose(4001, { getToken, userId: undefined, token: 't0' });
  assert.equal(ev.reconnect, true);
  assert.equal(sockets, 2, 'exactly one reconnect');
  assert.equal(n, 1);
});

test('the token goes in the URL as ?token=', async () => {
  const client = new Client('ws://fake/ws?x=1', { ...fake, token: 'abc.def.ghi' });
  client.connect();
  await next(client, 'connected');
  const url = new URL(FakeSocket.last.url);
  assert.equal(url.searchParams.get('token'), 'abc.def.ghi');
  assert.equal(url.searchParams.get('x'), '1');
  client.disconnect();
});

test('the real server closes 1008 on rate-limit abuse, and the client stays away', async (t) => {
  const srv = await startServer(t);
  const client = new Client(srv.ws, { ...FAST, userId: 'spammer' });
  t.after(() => client.disconnect());
  let attempts = 0;
  client.on('connecting', () => attempts++);
  client.connect();
  const room = client.room('spam');
  await room.join();
  const closed = next(client, 'disconnected', 10_000);
  const sends = Array.from({ length: 60 }, (_, i) => room.publish({ i }).catch((e) => e.code));
  const ev = await closed;
  await Promise.all(sends);
  assert.equal(ev.code, 1008, `closed ${ev.code} ${ev.reason}`);
  assert.equal(ev.reconnect, false);
  await sleep(700);
  assert.equal(attempts, 1, 'no reconnect after 1008');
});
