// (4) Each request's promise rejects with the server's error code, for every code a
// client can provoke on one node: forbidden (a room rule, the token's `rooms` claim),
// not_member, invalid_room, message_too_large, rate_limited, recipient_not_connected.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '../wsloop.js';
import { FAST, mint, next, startServer } from './helpers.mjs';

const SECRET = 'sdk-errors-secret';
const RULES = `
[[rooms]]
pattern = "team-*"
join = "claim"
publish = "claim"

[[rooms]]
pattern = "news"
join = "anyone"
publish = "server"
`;

async function server(t) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wsloop-sdk-errors-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'wsloop.toml');
  writeFileSync(config, RULES);
  return startServer(t, { args: ['--config', config, '--auth', 'jwt'], env: { WSLOOP_AUTH_SECRET: SECRET } });
}

/** A connected client for `user` (its own rate-limit bucket), with `rooms` claimed. */
async function connected(t, srv, user, rooms, extra = {}) {
  const token = mint(SECRET, user, 600, rooms ? { rooms } : {});
  const client = new Client(srv.ws, { ...FAST, token, ...extra });
  t.after(() => client.disconnect());
  client.connect();
  await next(client, 'connected');
  return client;
}

async function rejects(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `${err.code}: ${err.message}`);
    assert.ok(err instanceof Error);
    return true;
  });
}

test('every error code a client can provoke rejects its promise', async (t) => {
  const srv = await server(t);

  await t.test('forbidden: a room the token does not claim', async () => {
    const c = await connected(t, srv, 'u-forbidden', ['team-a']);
    await c.room('team-a').join();
    await rejects(c.room('team-b').join(), 'forbidden');
    assert.equal(c.room('team-b').joined, false);
  });

  await t.test('forbidden: publish to a room only the server writes', async () => {
    const c = await connected(t, srv, 'u-news');
    await c.room('news').join();
    await rejects(c.room('news').publish({ text: 'no' }), 'forbidden');
  });

  await t.test('not_member: publish to a room not joined', async () => {
    const c = await connected(t, srv, 'u-notmember', ['team-x']);
    await rejects(c.room('team-x').publish({ text: 'hi' }), 'not_member');
  });

  await t.test('invalid_room: a name the server refuses', async () => {
    const c = await connected(t, srv, 'u-invalid');
    await rejects(c.room('no spaces allowed!').join(), 'invalid_room');
  });

  await t.test('message_too_large: from the server (local limit off) and locally', async () => {
    const big = 'x'.repeat(70 * 1024);
    const c = await connected(t, srv, 'u-large', ['team-l'], { maxRequestBytes: Infinity });
    await c.room('team-l').join();
    await rejects(c.room('team-l').publish({ text: big }), 'message_too_large');
    const ack = await c.room('team-l').publish({ text: 'small is fine' });
    assert.equal(ack.type, 'ack', 'the next request gets its own answer');
    const local = await connected(t, srv, 'u-large-local', ['team-l']);
    await local.room('team-l').join();
    await rejects(local.room('team-l').publish({ text: big }), 'message_too_large');
  });

  await t.test('recipient_not_connected: private to nobody', async () => {
    const c = await connected(t, srv, 'u-private');
    await rejects(c.private('nobody-here', { text: 'hello?' }), 'recipient_not_connected');
  });

  await t.test('rate_limited: a burst over the bucket, with retryAfterMs', async () => {
    const c = await connected(t, srv, 'u-rate', ['team-r']);
    await c.room('team-r').join();
    const results = await Promise.allSettled(Array.from({ length: 14 }, (_, i) => c.room('team-r').publish({ i })));
    const limited = results.filter((r) => r.status === 'rejected');
    assert.ok(limited.length > 0, 'some are refused');
    for (const r of limited) {
      assert.equal(r.reason.code, 'rate_limited');
      assert.equal(typeof r.reason.retryAfterMs, 'number');
    }
    assert.ok(results[0].status === 'fulfilled', 'the first ones pass');
  });
});

test('disconnected: pending requests reject when the connection drops', async (t) => {
  const srv = await server(t);
  const c = await connected(t, srv, 'u-drop', ['team-d']);
  await c.room('team-d').join();
  const pending = c.room('team-d').publish({ text: 'in flight' });
  c.disconnect();
  await rejects(pending, 'disconnected');
  await rejects(c.private('x', 1), 'disconnected');
});
