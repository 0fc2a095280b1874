// (2) JWT auth against the real server (`--auth jwt`, HS256, no leeway): a short-lived
// token from `getToken` is refreshed before `exp` and the connection outlives it; without
// refresh the server closes 4001 and the client comes back with a fresh token.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, tokenExpiry } from '../wsloop.js';
import { FAST, mint, next, sleep, startServer, until } from './helpers.mjs';

const SECRET = 'sdk-test-secret';
const ENV = { WSLOOP_AUTH_SECRET: SECRET, WSLOOP_AUTH_LEEWAY: '0s' };
const ARGS = ['--auth', 'jwt', '--rate-limit', 'off'];

test('tokenExpiry reads exp from a JWT', () => {
  const token = mint(SECRET, 'x', 100);
  assert.equal(tokenExpiry(token), Math.floor(Date.now() / 1000) + 100);
  assert.equal(tokenExpiry('not a jwt'), null);
});

test('a 3-second token is refreshed before exp; the connection outlives several tokens', async (t) => {
  const server = await startServer(t, { args: ARGS, env: ENV });
  let minted = 0;
  const getToken = async () => { minted++; return mint(SECRET, 'carol', 3); };
  const client = new Client(server.ws, { ...FAST, getToken });
  t.after(() => client.disconnect());
  const states = [];
  client.on('state', (s) => states.push(s.state === 'disconnected' ? `disconnected ${s.code}` : s.state));
  let refreshed = 0;
  client.on('refreshed', () => refreshed++);
  const room = client.room('auth');
  client.connect();
  await room.join();
  assert.equal(client.userId, 'carol', 'the user comes from the token');
  await sleep(7_500);
  assert.ok(refreshed >= 2, `refreshed at least twice in 7.5 s (${refreshed})`);
  assert.deepEqual(states, ['connecting', 'connected'], 'one connection all along');
  const ack = await room.publish({ text: 'still here' });
  assert.equal(ack.type, 'ack');
  assert.ok(minted >= 3, `getToken called for the connection and each refresh (${minted})`);
});

test('without refresh, close 4001 at exp leads to a reconnect with a fresh token', async (t) => {
  const server = await startServer(t, { args: ARGS, env: ENV });
  const first = mint(SECRET, 'dave', 2);
  const fresh = [];
  const getToken = async () => { const tok = mint(SECRET, 'dave', 60); fresh.push(tok); return tok; };
  const client = new Client(server.ws, { ...FAST, token: first, getToken, autoRefresh: false, refreshMarginMs: 0 });
  t.after(() => client.disconnect());
  const room = client.room('expiry');
  client.connect();
  await room.join();
  assert.equal(fresh.length, 0, 'the first token was used as given');
  const closed = await next(client, 'disconnected', 10_000);
  assert.equal(closed.code, 4001, 'token expired');
  assert.equal(closed.reconnect, true, '4001 with getToken: reconnect');
  await next(room, 'joined', 10_000);
  assert.equal(fresh.length, 1, 'one fresh token fetched');
  assert.equal(client.token, fresh[0]);
  const ack = await room.publish({ text: 'back' });
  assert.equal(ack.type, 'ack');
});

test('4001 without getToken is terminal', async (t) => {
  const server = await startServer(t, { args: ARGS, env: ENV });
  const client = new Client(server.ws, { ...FAST, token: mint(SECRET, 'erin', 2) });
  t.after(() => client.disconnect());
  let attempts = 0;
  client.on('connecting', () => attempts++);
  client.connect();
  await next(client, 'connected');
  const closed = await next(client, 'disconnected', 10_000);
  assert.equal(closed.code, 4001);
  assert.equal(closed.reconnect, false);
  await sleep(800);
  assert.equal(attempts, 1, 'no second attempt');
});

test('a refused handshake (expired token at reconnect) fetches a fresh token', async (t) => {
  const server = await startServer(t, { args: ARGS, env: ENV });
  let calls = 0;
  const getToken = () => { calls++; return mint(SECRET, 'fred', calls === 1 ? -10 : 60); };
  const client = new Client(server.ws, { ...FAST, getToken });
  t.after(() => client.disconnect());
  client.connect();
  await next(client, 'connected', 10_000);
  await until(() => calls === 2, 'a second token after the 401');
});
