// Shared by the SDK tests: start the real `wsloop serve` on a free loopback port (killed
// at the end of the test, even on failure), mint HS256 tokens, wait for conditions, and a
// fake WebSocket for what a real server will not do on demand (duplicates, close codes).

import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.SDK_TEST_BIN || path.join(ROOT, 'target/release/wsloop');
export { WebSocket };

/** Short backoff, so reconnects in tests take milliseconds. */
export const FAST = { backoffBaseMs: 50, backoffCapMs: 300, WebSocket };

const live = new Set();
process.on('exit', () => { for (const p of live) try { p.kill('SIGKILL'); } catch { /* gone */ } });

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `wsloop serve --listen 127.0.0.1:PORT ARGS` and waits for /healthz. Registers the
 * kill with `t.after` when a test context is given. Returns { proc, port, base, ws, log }.
 */
export async function startServer(t, { port, args = [], env = {} } = {}) {
  if (!existsSync(BIN)) throw new Error(`${BIN} not found: cargo build --release (or set SDK_TEST_BIN)`);
  port = port || (await freePort());
  const deadline = Date.now() + 15_000;
  const log = [];
  for (;;) {
    const proc = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', '--handshake-rate', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    live.add(proc);
    proc.on('error', (err) => log.push(`spawn error: ${err.message}`));
    proc.on('exit', () => live.delete(proc));
    for (const s of [proc.stdout, proc.stderr]) s.on('data', (c) => log.push(String(c)));
    if (t) t.after(() => stopServer(proc));
    while (Date.now() < deadline && proc.exitCode === null && proc.signalCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return { proc, port, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws`, log };
      } catch { /* not yet */ }
      await sleep(50);
    }
    await stopServer(proc);
    if (Date.now() >= deadline) throw new Error(`wsloop did not start on ${port}: ${log.join('')}`);
    await sleep(200); // the port may still be held just after a kill
  }
}

export async function stopServer(proc, signal = 'SIGTERM') {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill(signal);
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `cond()` is true; rejects after `ms` with `what`. */
export async function until(cond, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The next `event` of `emitter` (within `ms`). */
export function next(emitter, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`no ${event} within ${ms} ms`)); }, ms);
    const off = emitter.on(event, (v) => { clearTimeout(timer); off(); resolve(v); });
  });
}

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/** An HS256 JWT for `user`, valid `ttl` seconds, with optional extra claims. */
export function mint(secret, user, ttl, extra = {}) {
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const body = b64url({ user_id: user, exp: Math.floor(Date.now() / 1000) + ttl, ...extra });
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** POST /api/publish with `key`. */
export async function publish(base, key, body) {
  const res = await fetch(`${base}/api/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`publish: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * A fake WebSocket with the shape the SDK uses. Each instance is pushed on `FakeSocket.all`;
 * the test plays the server: `serve(obj)` delivers a frame, `drop(code)` closes.
 */
export class FakeSocket {
  static all = [];
  static onCreate = null;
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
    setTimeout(() => {
      if (this.closed) return;
      FakeSocket.onCreate?.(this);
      this.onopen?.({});
      this.serve({ type: 'welcome', user_id: new URL(url).searchParams.get('user_id') || 'u', connection_id: '1' });
    }, 0);
  }
  send(text) {
    const m = JSON.parse(text);
    this.sent.push(m);
    this.onRequest?.(m);
  }
  serve(obj) { this.onmessage?.({ data: JSON.stringify(obj) }); }
  drop(code, reason = '') {
    this.closed = code;
    this.onclose?.({ code, reason });
  }
  close(code = 1005, reason = '') {
    if (this.closed) return;
    this.closed = code;
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }
  static reset() { FakeSocket.all = []; FakeSocket.onCreate = null; }
  static get last() { return FakeSocket.all[FakeSocket.all.length - 1]; }
}
