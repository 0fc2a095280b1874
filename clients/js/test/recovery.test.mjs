// (1) Reconnect after a server restart, with recovery: history on disk, a client in a
// room, the server killed (SIGKILL) and restarted on the same port, messages published
// while the client is away are received once, in order, after it rejoins with `since`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../wsloop.js';
import { FAST, WebSocket, freePort, next, publish, startServer, stopServer, until } from './helpers.mjs';

const KEY = 'sdk-test-key';

test('a room client reconnects after a restart and gets what it missed, once and in order', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wsloop-sdk-history-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = ['--history-dir', dir, '--api-key', KEY, '--rate-limit', 'off'];
  let server = await startServer(t, { args });
  const { port } = server;

  // Connections go through a gate: while it is shut they go to a port nobody listens on,
  // so the messages below are published while the client is certainly away.
  const dead = await freePort();
  let gateOpen = true;
  const urls = [];
  class Gated extends WebSocket {
    constructor(url) {
      const target = gateOpen ? url : url.replace(`:${port}/`, `:${dead}/`);
      urls.push(target);
      super(target);
    }
  }
  const client = new Client(server.ws, { ...FAST, userId: 'alice', WebSocket: Gated });
  t.after(() => client.disconnect());
  const room = client.room('recovery');
  const got = [];
  room.on('message', (m) => got.push(m.payload.n));
  const resets = [];
  room.on('reset', (r) => resets.push(r));
  client.connect();
  await room.join();

  for (const n of [1, 2, 3]) await publish(server.base, KEY, { room: 'recovery', payload: { n } });
  await until(() => got.length === 3, 'the first three messages');

  gateOpen = false;
  const down = next(client, 'disconnected');
  await stopServer(server.proc, 'SIGKILL');
  assert.equal((await down).reconnect, true, 'the client will reconnect');
  server = await startServer(t, { port, args });
  for (const n of [4, 5, 6]) await publish(server.base, KEY, { room: 'recovery', payload: { n } });
  // The backoff is jittered: wait for a retry to have hit the shut gate rather than
  // assume one did while the server restarted (a fast restart can beat the first retry).
  await until(() => urls.length >= 2, 'a retry while the server was away');

  const joined = next(room, 'joined', 15_000);
  gateOpen = true;
  client.retryNow();
  const rejoin = await joined;
  assert.equal(rejoin.recovered, true, 'rejoined with `since`, recovered');
  await publish(server.base, KEY, { room: 'recovery', payload: { n: 7 } });
  await until(() => got.includes(7), 'the live message after the rejoin');
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6, 7], 'every message once, in order');
  assert.deepEqual(resets, [], 'no reset: nothing was lost');
});

test('private messages and broadcasts are recovered with sync after a restart', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wsloop-sdk-feeds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const args = ['--history-dir', dir, '--api-key', KEY, '--rate-limit', 'off'];
  let server = await startServer(t, { args });
  const { port } = server;
  const dead = await freePort();
  let gateOpen = true;
  class Gated extends WebSocket {
    constructor(url) { super(gateOpen ? url : url.replace(`:${port}/`, `:${dead}/`)); }
  }
  const client = new Client(server.ws, { ...FAST, userId: 'bob', WebSocket: Gated });
  t.after(() => client.disconnect());
  const privates = [];
  const broadcasts = [];
  client.on('private', (m) => privates.push(m.payload.n));
  client.on('broadcast', (m) => broadcasts.push(m.payload.n));
  client.connect();
  await next(client, 'connected');
  await publish(server.base, KEY, { user_id: 'bob', payload: { n: 1 } });
  await publish(server.base, KEY, { payload: { n: 1 } });
  await until(() => privates.length === 1 && broadcasts.length === 1, 'the first private and broadcast');

  gateOpen = false;
  await stopServer(server.proc, 'SIGKILL');
  server = await startServer(t, { port, args });
  for (const n of [2, 3]) {
    await publish(server.base, KEY, { user_id: 'bob', payload: { n } });
    await publish(server.base, KEY, { payload: { n } });
  }
  gateOpen = true;
  client.retryNow();
  await next(client, 'connected', 15_000);
  await until(() => privates.length >= 3 && broadcasts.length >= 3, 'the missed feed messages');
  await publish(server.base, KEY, { user_id: 'bob', payload: { n: 4 } });
  await until(() => privates.includes(4), 'a live private message');
  assert.deepEqual(privates, [1, 2, 3, 4]);
  assert.deepEqual(broadcasts, [1, 2, 3]);
});
