// Types for wsloop.js, the client SDK for wsloop's hub (`/ws`).

/** A position in a room or feed: the last offset of an epoch. */
export interface Since { offset: number; epoch: string; }

/** Every delivery (room message, private message, broadcast, publisher type). */
export interface Delivery<P = unknown> {
  type: string;
  payload: P;
  sender_id: string;
  timestamp: string;
  room?: string;
  recipient_id?: string;
  offset?: number;
  epoch?: string;
}

export interface Ack { type: 'ack'; id: string; delivered?: number; published?: boolean; offset?: number; epoch?: string; }

export interface Joined {
  type: 'joined'; id: string; room: string; members: number; users: string[];
  epoch?: string; offset?: number; recovered?: boolean;
}

export interface Presence {
  type: 'presence'; room: string; action: 'join' | 'leave'; members: number; timestamp: string;
  user_id?: string; user_ids?: string[]; users_left?: number;
}

/** The app should reload the room or feed: messages before `offset` could not be delivered. */
export interface ResetEvent {
  room?: string; feed?: 'private' | 'broadcast';
  epoch?: string; offset?: number;
  reason: 'reset' | 'not_recovered';
}

export interface DisconnectedEvent { code: number; reason: string; reconnect: boolean; delayMs?: number; }

/** The server's error codes, plus the SDK's own: `disconnected`, `closed`, `left`, `token_unavailable`, `connect_failed`. */
export type ErrorCode =
  | 'invalid_json' | 'unknown_type' | 'invalid_field' | 'invalid_room' | 'not_member'
  | 'recipient_not_connected' | 'message_too_large' | 'binary_not_supported' | 'limit_exceeded'
  | 'rate_limited' | 'forbidden' | 'invalid_token' | 'unavailable'
  | 'disconnected' | 'closed' | 'left' | 'token_unavailable' | 'connect_failed'
  | (string & {});

export class WsloopError extends Error {
  constructor(code: ErrorCode, message?: string, reply?: object);
  code: ErrorCode;
  /** With `rate_limited` and `unavailable`: when to retry. */
  retryAfterMs?: number;
  reply?: object;
}

export interface WebSocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface ClientOptions {
  /** A JWT, sent as `?token=`. */
  token?: string;
  /** Returns a fresh JWT: used before `exp` (sent as `refresh`), after close 4001, and after a refused handshake. */
  getToken?: () => string | Promise<string>;
  /** `?user_id=` while the server's auth is off. */
  userId?: string;
  /** A WebSocket constructor instead of `globalThis.WebSocket` (e.g. the `ws` package in Node). */
  WebSocket?: new (url: string) => WebSocketLike;
  /** First retry waits up to this long [500]. */
  backoffBaseMs?: number;
  /** No retry waits longer [15000]. */
  backoffCapMs?: number;
  /** Connected this long: the backoff starts over [10000]. */
  stableAfterMs?: number;
  /** An attempt not open by then is given up and retried [10000]. */
  openTimeoutMs?: number;
  /** Requests larger than this are refused locally with `message_too_large` [65536, the server's default]. */
  maxRequestBytes?: number;
  /** Refresh the token this long before `exp`, or at 80 % of its remaining life if sooner [10000]. */
  refreshMarginMs?: number;
  /** With `getToken`: send `refresh` before `exp` [true]. Off, the server closes 4001 at `exp` and the client reconnects with a new token. */
  autoRefresh?: boolean;
}

export const DEFAULTS: Readonly<Required<Pick<ClientOptions,
  'backoffBaseMs' | 'backoffCapMs' | 'stableAfterMs' | 'openTimeoutMs' | 'maxRequestBytes' | 'refreshMarginMs' | 'autoRefresh'>>>;

export function isTerminalClose(code: number): boolean;
export function tokenExpiry(token: string): number | null;

export interface RoomEvents {
  message: Delivery;
  presence: Presence;
  joined: Joined;
  left: { type: 'left'; room: string; members: number; reason?: string };
  reset: ResetEvent;
  error: WsloopError;
}

export class Room {
  readonly client: Client;
  readonly name: string;
  readonly joined: boolean;
  readonly members: Set<string>;
  readonly count: number;
  join(): Promise<Joined>;
  leave(): Promise<unknown>;
  publish(payload: unknown): Promise<Ack>;
  on<K extends keyof RoomEvents>(event: K, fn: (value: RoomEvents[K]) => void): () => void;
  off<K extends keyof RoomEvents>(event: K, fn: (value: RoomEvents[K]) => void): void;
}

export interface ClientEvents {
  connecting: { attempt: number };
  connected: { userId: string; connectionId: string };
  disconnected: DisconnectedEvent;
  state: { state: Client['state'] } & Partial<DisconnectedEvent>;
  private: Delivery;
  broadcast: Delivery;
  reset: ResetEvent;
  refreshed: { exp: number | null };
  error: WsloopError;
}

export class Client {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  readonly userId: string | null;
  readonly state: 'idle' | 'connecting' | 'connected' | 'disconnected';
  /** When the next attempt starts (ms since the epoch), while disconnected and reconnecting. */
  readonly retryAt: number;
  readonly rooms: Map<string, Room>;
  room(name: string): Room;
  connect(): void;
  disconnect(): void;
  retryNow(): void;
  private(userId: string, payload: unknown): Promise<Ack>;
  broadcast(payload: unknown): Promise<Ack>;
  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): void;
}

export default Client;
