// (3) Dedupe and resets, against a fake WebSocket that plays the server: duplicates and
// replays of offsets already delivered are dropped; `since` carries the last offset seen;
// `reset` frames and `recovered: false` raise `reset`.

import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../wsloop.js';
import { FakeSocket, next, until } from './helpers.mjs';

const E = 'e0e0e0e0e0e0e0e0';
const opts = { WebSocket: FakeSocket, userId: 'alice', backoffBaseMs: 1, backoffCapMs: 5 };
const msg = (n, epoch = E) => ({ type: 'chat', room: 'r', sender_id: 'bob', timestamp: 't', payload: n, offset: n, epoch });

/** Answers joins and syncs like the server; `joinedWith` shapes the `joined` reply. */
function autoServe(joinedWith) {
  FakeSocket.onCreate = (ws) => {
    ws.onRequest = (m) => {
      if (m.type === 'join') ws.serve({ type: 'joined', id: m.id, room: m.room, members: 2, users: ['alice', 'bob'], ...joinedWith(m) });
      if (m.type === 'sync') ws.serve({ type: 'synced', id: m.id, feed: m.feed, epoch: E, offset: 0, ...(m.since ? { recovered: true } : {}) });
    };
  };
}

beforeEach(() => FakeSocket.reset());

test('room: a duplicate or replayed offset is delivered once; since carries the last one', async (t) => {
  autoServe((m) => (m.since ? { recovered: true, epoch: E, offset: 9 } : { epoch: E, offset: 5 }));
  const client = new Client('ws://fake/ws', opts);
  t.after(() => client.disconnect());
  const room = client.room('r');
  const got = [];
  room.on('message', (m) => got.push(m.offset));
  client.connect();
  await room.join();
  const ws = FakeSocket.last;
  for (const n of [4, 5, 6, 7, 6, 7, 8]) ws.serve(msg(n));
  assert.deepEqual(got, [6, 7, 8], 'offsets up to joined.offset and repeats are dropped');

  const rejoined = next(room, 'joined');
  ws.drop(1006);
  await rejoined;
  const ws2 = FakeSocket.last;
  assert.notEqual(ws2, ws);
  const join = ws2.sent.find((m) => m.type === 'join');
  assert.deepEqual(join.since, { offset: 8, epoch: E }, 'rejoin with the last offset delivered');
  for (const n of [7, 8, 9]) ws2.serve(msg(n)); // a replay that reaches back too far
  assert.deepEqual(got, [6, 7, 8, 9]);
});

test('room: reset and recovered:false raise reset and move the position', async (t) => {
  autoServe((m) => (m.since ? { recovered: false, epoch: 'new', offset: 3 } : { epoch: E, offset: 0 }));
  const client = new Client('ws://fake/ws', opts);
  t.after(() => client.disconnect());
  const room = client.room('r');
  const got = [];
  const resets = [];
  room.on('message', (m) => got.push(`${m.epoch}:${m.offset}`));
  room.on('reset', (r) => resets.push(`${r.reason}:${r.epoch}:${r.offset}`));
  client.connect();
  await room.join();
  const ws = FakeSocket.last;
  ws.serve(msg(1));
  ws.serve({ type: 'reset', room: 'r', epoch: E, offset: 5 });
  ws.serve(msg(4)); // before the reset's position: dropped
  ws.serve(msg(6));
  assert.deepEqual(resets, [`reset:${E}:5`]);
  const rejoined = next(room, 'joined');
  ws.drop(1001);
  await rejoined;
  assert.deepEqual(resets, [`reset:${E}:5`, 'not_recovered:new:3']);
  FakeSocket.last.serve(msg(3, 'new'));
  FakeSocket.last.serve(msg(4, 'new'));
  assert.deepEqual(got, [`${E}:1`, `${E}:6`, 'new:4']);
});

test('feeds: duplicates dropped; live messages before synced wait for the replay', async (t) => {
  autoServe(() => ({ epoch: E, offset: 0 }));
  const client = new Client('ws://fake/ws', opts);
  t.after(() => client.disconnect());
  const got = [];
  client.on('private', (m) => got.push(m.offset));
  const priv = (n) => ({ type: 'private', recipient_id: 'alice', sender_id: 'bob', timestamp: 't', payload: n, offset: n, epoch: E });
  client.connect();
  await next(client, 'connected');
  await until(() => FakeSocket.last.sent.filter((m) => m.type === 'sync').length === 2, 'two syncs');
  const ws = FakeSocket.last;
  for (const n of [1, 2, 2, 1, 3]) ws.serve(priv(n));
  assert.deepEqual(got, [1, 2, 3]);

  // Reconnect: hold the server's answer to `sync` until a live message came first.
  FakeSocket.onCreate = (sock) => {
    sock.onRequest = (m) => {
      if (m.type !== 'sync' || m.feed !== 'private') return;
      assert.deepEqual(m.since, { offset: 3, epoch: E });
      sock.serve(priv(6)); // live, ahead of the replay
      sock.serve({ type: 'synced', id: m.id, feed: 'private', recovered: true, epoch: E, offset: 6 });
      for (const n of [4, 5, 6]) sock.serve(priv(n));
    };
  };
  ws.drop(1006);
  await until(() => got.length === 6, 'the replay', 5_000);
  assert.deepEqual(got, [1, 2, 3, 4, 5, 6]);
});

test('room: leave() while the join is on its way sends leave once the join lands', async (t) => {
  const client = new Client('ws://fake/ws', opts);
  t.after(() => client.disconnect());
  client.connect();
  await next(client, 'connected');
  const ws = FakeSocket.last;
  const room = client.room('r');
  const joining = room.join();
  const join = ws.sent.find((m) => m.type === 'join');
  await room.leave();
  await assert.rejects(joining, (err) => err.code === 'left');
  ws.serve({ type: 'joined', id: join.id, room: 'r', members: 1, users: ['alice'] });
  assert.equal(room.joined, false);
  const leave = ws.sent.find((m) => m.type === 'leave');
  assert.ok(leave, 'the membership the late join made is undone');
  ws.serve(msg(1));
  ws.serve({ type: 'left', id: leave.id, room: 'r', members: 0 });
});
