// wsloop.js: the JavaScript client SDK for wsloop's hub (`/ws`). An ES module with no
// runtime dependencies; the server serves this very file at GET /wsloop.js.
//
//   import { Client } from "/wsloop.js";
//   const client = new Client("wss://chat.example.com/ws", { getToken });
//   const room = client.room("lobby");
//   room.on("message", (m) => console.log(m.sender_id, m.payload));
//   client.connect();
//   await room.join();
//   await room.publish({ text: "hello" });
//
// What it guarantees (with history on in the server): room messages, private messages and
// broadcasts are delivered to the app once and in order across reconnects (each joined room
// is rejoined with `since`, each feed is recovered with `sync`; a message whose offset was
// already delivered in its epoch is dropped). When the server cannot fill a gap
// (`recovered: false`, or a `reset` frame) the room or client emits `reset`: reload.
//
// Reconnection: exponential backoff with full jitter (a random wait in [0, min(cap,
// base * 2^attempt))), reset after a connection stayed up `stableAfterMs`. No retry after
// close 1008 or 4000-4499, except 4001 (token expired) when `getToken` can fetch a new one.

/** Close codes after which the client does not reconnect (README "Close codes"). */
export function isTerminalClose(code) {
  return code === 1008 || (code >= 4000 && code <= 4499);
}

/** The default options; every one can be overridden in `new Client(url, options)`. */
export const DEFAULTS = Object.freeze({
  backoffBaseMs: 500,       // the first retry waits up to this long
  backoffCapMs: 15000,      // no retry waits longer than this
  stableAfterMs: 10000,     // connected this long: the backoff starts over
  openTimeoutMs: 10000,     // an attempt not open by then is given up (and retried)
  maxRequestBytes: 65536,   // the server's hub.max_request_bytes: larger requests are refused here
  refreshMarginMs: 10000,   // refresh the token this long before `exp` (or at 80 % of its life)
  autoRefresh: true,        // with getToken: send `refresh` before `exp`
});

/** An Error with the server's (or the SDK's) `code`, e.g. `forbidden` or `disconnected`. */
export class WsloopError extends Error {
  constructor(code, message, reply) {
    super(message || code);
    this.name = 'WsloopError';
    this.code = code;
    if (reply && typeof reply.retry_after_ms === 'number') this.retryAfterMs = reply.retry_after_ms;
    if (reply) this.reply = reply;
  }
}

/** A tiny event emitter: `on` returns a function that removes the listener. */
class Emitter {
  constructor() { this._listeners = new Map(); }
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) { this._listeners.get(event)?.delete(fn); }
  _emit(event, value) {
    for (const fn of [...(this._listeners.get(event) || [])]) {
      try { fn(value); } catch (err) { setTimeout(() => { throw err; }); }
    }
  }
}

/** The `exp` claim (seconds) of a JWT, or null: the payload is base64url JSON. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const text = typeof atob === 'function' ? atob(b64) : Buffer.from(b64, 'base64').toString('binary');
    const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims.exp === 'number' ? claims.exp : null;
  } catch {
    return null;
  }
}

/**
 * A position in a room or feed: the last `offset` of `epoch` delivered. `accept` says
 * whether a delivery is new (and moves the position), so each offset passes once.
 */
class Position {
  constructor() { this.epoch = null; this.offset = null; }
  get known() { return this.epoch !== null; }
  set(epoch, offset) { this.epoch = epoch; this.offset = offset; }
  since() { return this.known ? { offset: this.offset, epoch: this.epoch } : undefined; }
  accept(m) {
    if (typeof m.offset !== 'number' || typeof m.epoch !== 'string') return true; // no history
    if (this.epoch === m.epoch && m.offset <= this.offset) return false;
    this.set(m.epoch, m.offset);
    return true;
  }
}

/** A room: join, leave, publish, its messages and members. Get one with `client.room(name)`. */
export class Room extends Emitter {
  constructor(client, name) {
    super();
    this.client = client;
    this.name = name;
    this.wanted = false;        // the app asked to be a member
    this.joined = false;        // a member on the current connection
    this.members = new Set();   // user ids (at most 100 from `joined`, then presence)
    this.count = 0;             // the exact member count
    this.position = new Position();
    this._joinWaiters = [];
    this._joinId = null;        // the id of the join request on its way
    this._abandonedJoin = null; // a join sent before leave(): its answer is undone
  }

  /** Joins (and rejoins after every reconnect); resolves with the `joined` reply. */
  join() {
    if (this.joined && this.wanted) return Promise.resolve(this._lastJoined);
    this.wanted = true;
    const promise = new Promise((resolve, reject) => this._joinWaiters.push({ resolve, reject }));
    if (this.client._ready && this._joinId === null) this._sendJoin();
    return promise;
  }

  /** Leaves; resolves once the server said `left` (at once when not connected). */
  async leave() {
    this.wanted = false;
    this._failJoin(new WsloopError('left', `left ${this.name} before joining`));
    const wasJoined = this.joined;
    // A join still on its way makes us a member when it lands: leave then (_onJoined).
    this._abandonedJoin = this._joinId;
    this._clear();
    if (!wasJoined || !this.client._ready) return undefined;
    return this.client._request({ type: 'leave', room: this.name });
  }

  /** Publishes `payload` to the room; resolves with the `ack`, rejects with the server's code. */
  publish(payload) {
    return this.client._request({ type: 'chat', room: this.name, payload });
  }

  _sendJoin() {
    const msg = { type: 'join', room: this.name };
    const since = this.position.since();
    if (since) msg.since = since;
    const id = this.client._newId();
    this._joinId = id; // before sending: the answer may come at once
    const { promise } = this.client._requestWithId(msg, id);
    // Success is handled synchronously by _onJoined (the replay follows `joined` at once,
    // possibly in the same read); a refusal comes through the promise.
    promise.catch((err) => this._onJoinError(id, err));
  }

  _onJoined(m) {
    if (this._abandonedJoin && String(m.id) === this._abandonedJoin) {
      // Left while the join was on its way: the server made us a member; undo it.
      this._abandonedJoin = null;
      if (!this.wanted) this.client._request({ type: 'leave', room: this.name }).catch(() => {});
      return;
    }
    if (this._joinId === null || String(m.id) !== this._joinId) return;
    this._joinId = null;
    this.joined = true;
    this.members = new Set(Array.isArray(m.users) ? m.users.map(String) : []);
    if (this.client.userId) this.members.add(this.client.userId);
    this.count = typeof m.members === 'number' ? m.members : this.members.size;
    const hasPosition = typeof m.offset === 'number' && typeof m.epoch === 'string';
    if (m.recovered === false) {
      if (hasPosition) this.position.set(m.epoch, m.offset);
      this._emit('reset', { room: this.name, epoch: m.epoch, offset: m.offset, reason: 'not_recovered' });
    } else if (hasPosition && !this.position.known) {
      this.position.set(m.epoch, m.offset);
    }
    this._lastJoined = m;
    this._emit('joined', m);
    const waiters = this._joinWaiters.splice(0);
    for (const w of waiters) w.resolve(m);
  }

  _onJoinError(id, err) {
    if (this._joinId === id) this._joinId = null;
    if (err.code === 'disconnected') return; // rejoined when connected again
    this.wanted = false;
    this._failJoin(err);
    this._emit('error', err);
  }

  _failJoin(err) {
    for (const w of this._joinWaiters.splice(0)) w.reject(err);
  }

  _clear() {
    this.joined = false;
    this.members = new Set();
    this.count = 0;
    this._joinId = null;
  }

  _onMessage(m) {
    if (!this.joined) return;
    if (this.position.accept(m)) this._emit('message', m);
  }

  _onPresence(m) {
    if (!this.joined) return;
    const users = Array.isArray(m.user_ids) ? m.user_ids.map(String) : [String(m.user_id)];
    for (const u of users) {
      if (m.action === 'join') this.members.add(u);
      else if (m.action === 'leave') this.members.delete(u);
    }
    if (typeof m.members === 'number') this.count = m.members;
    this._emit('presence', m);
  }

  _onReset(m) {
    this.position.set(m.epoch, m.offset);
    this._emit('reset', { room: this.name, epoch: m.epoch, offset: m.offset, reason: 'reset' });
  }

  _onLeft(m) {
    // Unasked (e.g. a refreshed token no longer admits us): the room is not ours any more.
    this.wanted = false;
    this._clear();
    this._emit('left', m);
  }
}

/** The client: one WebSocket to the hub at a time, reconnected with backoff. */
export class Client extends Emitter {
  /**
   * @param {string} url   ws:// or wss:// URL of the hub (`/ws`)
   * @param {object} [options] token, getToken, userId, WebSocket, and the DEFAULTS
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function') throw new TypeError('no WebSocket: pass options.WebSocket');
    this.token = options.token || null;
    this.getToken = options.getToken || null;
    this.userId = null;
    this.state = 'idle';          // idle | connecting | connected | disconnected
    this.retryAt = 0;             // when the next attempt starts (while disconnected)
    this.attempt = 0;
    this.rooms = new Map();
    this.feeds = { private: new Position(), broadcast: new Position() };
    this._syncing = { private: null, broadcast: null }; // deliveries held until `synced`
    this._ws = null;
    this._ready = false;          // `welcome` received on the current socket
    this._wanted = false;
    this._pending = new Map();    // id -> { resolve, reject, bytes }
    this._idPrefix = Math.random().toString(36).slice(2, 10);
    this._nextId = 1;
    this._timers = {};
    this._freshToken = false;     // fetch a token before the next attempt
  }

  /** Returns the room called `name` (one object per name). */
  room(name) {
    let r = this.rooms.get(name);
    if (!r) { r = new Room(this, name); this.rooms.set(name, r); }
    return r;
  }

  /** Connects (and keeps reconnecting until `disconnect()` or a terminal close). */
  connect() {
    this._wanted = true;
    this.attempt = 0;
    if (!this._ws && !this._opening) this._open();
  }

  /** Closes with 1000 and stops reconnecting; pending requests reject with `disconnected`. */
  disconnect() {
    this._wanted = false;
    this._clearTimers();
    this._failRooms(new WsloopError('disconnected', 'disconnect() was called'));
    const ws = this._ws;
    if (ws) {
      this._detach(ws);
      try { ws.close(1000, 'bye'); } catch { /* already closing */ }
      this._closed({ code: 1000, reason: 'bye' }, false);
    } else if (this.state !== 'idle') {
      this._setState('disconnected', { code: 1000, reason: 'bye', reconnect: false });
    }
  }

  /** Skips the backoff wait (e.g. a "retry now" button, or the browser came online). */
  retryNow() {
    if (this._wanted && !this._ws && !this._opening) { this._clearTimers(); this._open(); }
  }

  /** Sends a private message; resolves with the `ack`, rejects with the server's code. */
  private(userId, payload) {
    return this._request({ type: 'private', recipient_id: String(userId), payload });
  }

  /** Sends a message to everyone (`chat` without a room); resolves with the `ack`. */
  broadcast(payload) {
    return this._request({ type: 'chat', payload });
  }

  // ---- connection --------------------------------------------------------------------------
  async _open() {
    this._opening = true;
    try {
      await this._attempt();
    } finally {
      this._opening = false;
    }
  }

  async _attempt() {
    this._clearTimers();
    this._setState('connecting', { attempt: this.attempt });
    if (this.getToken && (this._freshToken || !this.token || this._expiresWithin(this.options.refreshMarginMs))) {
      try {
        this.token = await this.getToken();
        this._freshToken = false;
      } catch (err) {
        this._emit('error', new WsloopError('token_unavailable', `getToken failed: ${err && err.message}`));
        return this._scheduleReconnect({ code: 0, reason: 'getToken failed' });
      }
      if (!this._wanted) return undefined;
    }
    let ws;
    try {
      ws = new this.WebSocket(this._socketUrl());
    } catch (err) {
      this._emit('error', new WsloopError('connect_failed', err.message));
      return this._scheduleReconnect({ code: 0, reason: err.message });
    }
    this._ws = ws;
    ws._wsloopOpened = false;
    this._timers.open = setTimeout(() => {
      if (this._ws === ws && !ws._wsloopOpened) {
        this._detach(ws);
        try { ws.close(); } catch { /* never opened */ }
        this._closed({ code: 1006, reason: 'open timeout' }, true);
      }
    }, this.options.openTimeoutMs);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      ws._wsloopOpened = true;
      clearTimeout(this._timers.open);
      this._timers.stable = setTimeout(() => { this.attempt = 0; }, this.options.stableAfterMs);
    };
    ws.onmessage = (ev) => { if (this._ws === ws) this._receive(ev.data); };
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._detach(ws);
      this._closed({ code: ev.code, reason: ev.reason, opened: ws._wsloopOpened }, true);
    };
    ws.onerror = () => { /* a close event follows */ };
    return undefined;
  }

  _socketUrl() {
    const u = new URL(this.url, typeof location !== 'undefined' ? location.href : undefined);
    if (this.token) u.searchParams.set('token', this.token);
    else if (this.options.userId) u.searchParams.set('user_id', this.options.userId);
    return u.toString();
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => {};
    if (this._ws === ws) this._ws = null;
  }

  _closed(ev, mayReconnect) {
    this._ws = null;
    this._ready = false;
    this._clearTimers();
    for (const room of this.rooms.values()) room._clear();
    this._syncing = { private: null, broadcast: null };
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) p.reject(new WsloopError('disconnected', `disconnected (close ${ev.code})`));
    if (!mayReconnect || !this._wanted) {
      this._wanted = false;
      return this._setState('disconnected', { code: ev.code, reason: ev.reason || '', reconnect: false });
    }
    if (ev.code === 4001 && this.getToken) {
      // Token expired: reconnect at once with a fresh one.
      this._freshToken = true;
      return this._scheduleReconnect(ev, 0);
    }
    if (isTerminalClose(ev.code)) {
      this._wanted = false;
      this._failRooms(new WsloopError('closed', `closed ${ev.code}: ${ev.reason || ''}`));
      return this._setState('disconnected', { code: ev.code, reason: ev.reason || '', reconnect: false });
    }
    // A handshake refused (a 401 shows as 1006 before open): try a fresh token next time.
    if (!ev.opened && this.getToken) this._freshToken = true;
    return this._scheduleReconnect(ev);
  }

  _failRooms(err) {
    for (const room of this.rooms.values()) room._failJoin(err);
  }

  _scheduleReconnect(ev, fixedDelay) {
    if (!this._wanted) return this._setState('disconnected', { code: ev.code, reason: ev.reason || '', reconnect: false });
    const { backoffBaseMs, backoffCapMs } = this.options;
    const ceiling = Math.min(backoffCapMs, backoffBaseMs * 2 ** Math.min(this.attempt, 30));
    const delay = fixedDelay ?? Math.random() * ceiling;
    this.attempt++;
    this.retryAt = Date.now() + delay;
    this._timers.retry = setTimeout(() => this._open(), delay);
    return this._setState('disconnected', { code: ev.code, reason: ev.reason || '', reconnect: true, delayMs: delay });
  }

  _setState(state, detail = {}) {
    this.state = state;
    this._emit(state, detail);
    this._emit('state', { state, ...detail });
  }

  _clearTimers() {
    for (const t of Object.values(this._timers)) clearTimeout(t);
    this._timers = {};
  }

  // ---- token refresh -----------------------------------------------------------------------
  _expiresWithin(ms) {
    const exp = tokenExpiry(this.token);
    return exp !== null && exp * 1000 - Date.now() <= ms;
  }

  _scheduleRefresh() {
    clearTimeout(this._timers.refresh);
    const exp = tokenExpiry(this.token);
    if (!this.getToken || !this.options.autoRefresh || exp === null) return;
    const left = exp * 1000 - Date.now();
    const delay = Math.max(0, Math.min(left * 0.8, Math.max(left - this.options.refreshMarginMs, left * 0.5)));
    this._timers.refresh = setTimeout(() => this._refresh(), delay);
  }

  async _refresh() {
    const ws = this._ws;
    let token;
    try {
      token = await this.getToken();
    } catch (err) {
      this._emit('error', new WsloopError('token_unavailable', `getToken failed: ${err && err.message}`));
      this._timers.refresh = setTimeout(() => this._refresh(), 1000);
      return;
    }
    if (this._ws !== ws || !this._ready) return;
    try {
      await this._request({ type: 'refresh', token });
      this.token = token;
      this._emit('refreshed', { exp: tokenExpiry(token) });
      this._scheduleRefresh();
    } catch (err) {
      if (err.code !== 'disconnected') this._emit('error', err);
    }
  }

  // ---- requests ----------------------------------------------------------------------------
  /** A request id, unique per user across connections (a random session prefix). */
  _newId() {
    return `${this._idPrefix}-${this._nextId++}`;
  }

  _requestWithId(msg, id = this._newId()) {
    const promise = new Promise((resolve, reject) => {
      const text = JSON.stringify({ ...msg, id });
      const bytes = new TextEncoder().encode(text).length;
      if (!this._ready || !this._ws) {
        reject(new WsloopError('disconnected', 'not connected'));
      } else if (bytes > this.options.maxRequestBytes) {
        reject(new WsloopError('message_too_large', `request of ${bytes} bytes exceeds ${this.options.maxRequestBytes}`));
      } else {
        this._pending.set(id, { resolve, reject, bytes });
        this._ws.send(text);
      }
    });
    return { id, promise };
  }

  _request(msg) {
    return this._requestWithId(msg).promise;
  }

  _settle(m, ok) {
    let entry = m.id !== undefined ? this._pending.get(String(m.id)) : undefined;
    let id = m.id;
    if (!entry && m.id === undefined && !ok) {
      // A request too large to parse is refused without its id: the server answers in
      // order, so it is the oldest unanswered request.
      const first = this._pending.entries().next();
      if (!first.done) [id, entry] = first.value;
    }
    if (!entry) return false;
    this._pending.delete(String(id));
    if (ok) entry.resolve(m);
    else entry.reject(new WsloopError(m.code || 'error', m.message, m));
    return true;
  }

  // ---- receiving ---------------------------------------------------------------------------
  _receive(data) {
    let m;
    try { m = JSON.parse(typeof data === 'string' ? data : String(data)); } catch { return; }
    if (!m || typeof m !== 'object') return;
    switch (m.type) {
      case 'welcome': return this._onWelcome(m);
      case 'joined':
        this.rooms.get(m.room)?._onJoined(m);
        return void this._settle(m, true);
      case 'ack': case 'refreshed': return void this._settle(m, true);
      case 'left': return this._onLeft(m);
      case 'synced': return this._onSynced(m);
      case 'presence': return void this.rooms.get(m.room)?._onPresence(m);
      case 'reset': return this._onReset(m);
      case 'error':
        if (!this._settle(m, false)) this._emit('error', new WsloopError(m.code || 'error', m.message, m));
        return undefined;
      default:
        if (typeof m.sender_id === 'string' || 'payload' in m) return this._onDelivery(m);
        return undefined;
    }
  }

  _onWelcome(m) {
    this.userId = String(m.user_id);
    this._ready = true;
    this._setState('connected', { userId: this.userId, connectionId: m.connection_id });
    for (const room of this.rooms.values()) if (room.wanted) room._sendJoin();
    for (const feed of ['private', 'broadcast']) this._sync(feed);
    this._scheduleRefresh();
  }

  _sync(feed) {
    const since = this.feeds[feed].since();
    const msg = since ? { type: 'sync', feed, since } : { type: 'sync', feed };
    this._syncing[feed] = [];
    this._request(msg).catch((err) => {
      if (err.code !== 'disconnected') this._emit('error', err);
    });
  }

  _onSynced(m) {
    this._settle(m, true);
    const feed = m.feed === 'private' ? 'private' : 'broadcast';
    const held = this._syncing[feed] || [];
    this._syncing[feed] = null;
    const pos = this.feeds[feed];
    const hasPosition = typeof m.offset === 'number' && typeof m.epoch === 'string';
    if (m.recovered === false) {
      if (hasPosition) pos.set(m.epoch, m.offset);
      this._emit('reset', { feed, epoch: m.epoch, offset: m.offset, reason: 'not_recovered' });
    } else if (m.recovered === true) {
      // The replay that follows holds every message after `since`, the held ones too.
      return;
    } else if (hasPosition && !pos.known) {
      // A first sync: start at the feed's position; anything held came after it.
      pos.set(m.epoch, m.offset);
    }
    for (const h of held) this._deliverFeed(feed, h);
  }

  _onLeft(m) {
    if (this._settle(m, true)) return;
    this.rooms.get(m.room)?._onLeft(m);
  }

  _onReset(m) {
    if (typeof m.room === 'string') return void this.rooms.get(m.room)?._onReset(m);
    const feed = m.feed === 'private' ? 'private' : 'broadcast';
    this.feeds[feed].set(m.epoch, m.offset);
    this._emit('reset', { feed, epoch: m.epoch, offset: m.offset, reason: 'reset' });
  }

  _onDelivery(m) {
    if (typeof m.room === 'string') return void this.rooms.get(m.room)?._onMessage(m);
    const feed = m.recipient_id !== undefined ? 'private' : 'broadcast';
    if (this._syncing[feed]) return void this._syncing[feed].push(m);
    return this._deliverFeed(feed, m);
  }

  _deliverFeed(feed, m) {
    if (this.feeds[feed].accept(m)) this._emit(feed, m);
  }
}

export default Client;
