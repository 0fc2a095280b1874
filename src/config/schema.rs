//! The configuration file's schema: every key, its type and its default.
//!
//! `wsloop.example.toml` documents the same keys for humans; a test checks that it parses
//! to exactly these defaults, so the two cannot drift apart. Sizes in bytes accept units
//! (`16KiB`, `1MiB`) everywhere; durations accept `250ms`, `10s`, `5m`.

use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;
use wsloop::hub::PrivatePolicy;
use wsloop::hub::rules::{Access, RoomRule};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    /// Listening, connection limits and timeouts.
    pub server: ServerSection,
    /// The `/echo` endpoint.
    pub echo: EchoSection,
    /// The `/ws` hub.
    pub hub: HubSection,
    /// The per-user message rate limit on `/ws`.
    pub rate_limit: RateLimitSection,
    /// Authentication before the upgrade.
    pub auth: AuthSection,
    /// Which browser origins may connect.
    pub origin: OriginSection,
    /// Logging.
    pub log: LogSection,
    /// The HTTP publish API.
    pub api: ApiSection,
    /// Room history and recovery.
    pub history: HistorySection,
    /// Several nodes over Redis.
    pub cluster: ClusterSection,
    /// permessage-deflate (RFC 7692).
    pub compression: CompressionSection,
    /// TLS on the public listener.
    pub tls: TlsSection,
    /// Room rules (`[[rooms]]`), first match wins.
    pub rooms: Vec<RoomRule>,
}

/// `[tls]`: the public listener speaks TLS 1.3/1.2 when both files are set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TlsSection {
    /// PEM certificate chain, the server's certificate first. Empty: no TLS.
    pub cert_file: String,
    /// PEM private key (RSA, ECDSA or Ed25519). Reloaded with the certificate on SIGHUP.
    pub key_file: String,
}

/// `[cluster]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// `redis://host:port[/db]`, or `rediss://…` for TLS; empty: one node on its own.
    pub redis_url: String,
    /// A file holding the Redis URL (it may carry a password; instead of `redis_url`).
    pub redis_url_file: String,
    /// This node's name on the bus; empty: host name, process id and a random suffix.
    pub node_id: String,
    /// Prefix of every Redis key and of the bus channel (nodes of one cluster share it).
    pub prefix: String,
    /// New messages while Redis is away: `refuse` them (`unavailable`, the default) or
    /// deliver them on this node only (`local`).
    pub when_redis_down: WhenRedisDown,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            redis_url_file: String::new(),
            node_id: String::new(),
            prefix: "wsloop".into(),
            when_redis_down: WhenRedisDown::Refuse,
        }
    }
}

/// `cluster.when_redis_down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WhenRedisDown {
    /// Refuse with `unavailable` and a retry time: nothing out of order or missing from
    /// history.
    Refuse,
    /// Deliver on this node only, without history offsets.
    Local,
}

/// When the history log is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Fsync {
    /// Leave it to the operating system.
    Never,
    /// Every `fsync_interval`, from a background thread.
    Interval,
}

/// `[history]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HistorySection {
    /// Messages kept per room; 0 turns history (offsets, recovery) off.
    pub size: usize,
    /// Messages older than this are not replayed.
    pub ttl: HumanDuration,
    /// Rooms whose history is kept (least recently written forgotten first).
    pub max_rooms: usize,
    /// Bytes of history kept in memory, all rooms together (least recently written rooms
    /// forgotten first).
    #[serde(with = "super::size::serde_size")]
    pub max_bytes: usize,
    /// A directory for the history log, so a restart (or kill -9) loses nothing. Empty:
    /// memory only.
    pub dir: String,
    /// `interval` (fsync every `fsync_interval`) or `never` (the OS decides). A process
    /// crash loses nothing either way: every message is written before anyone receives it.
    pub fsync: Fsync,
    /// How often the log is fsynced with `fsync = "interval"`.
    pub fsync_interval: HumanDuration,
}

impl Default for HistorySection {
    fn default() -> Self {
        Self {
            size: 100,
            ttl: HumanDuration::secs(3600),
            max_rooms: 10_000,
            max_bytes: 64 << 20,
            dir: String::new(),
            fsync: Fsync::Interval,
            fsync_interval: HumanDuration::secs(1),
        }
    }
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ApiSection {
    /// Keys accepted as `Authorization: Bearer <key>` on `POST /api/publish`. With none, the
    /// API is off (404), never open.
    pub keys: Vec<String>,
    /// A file with one API key per line (instead of `keys`).
    pub keys_file: String,
    /// Largest request body in bytes; over it, 413.
    #[serde(with = "super::size::serde_size")]
    pub max_body_bytes: usize,
    /// The `sender_id` of published messages.
    pub sender_id: String,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            keys_file: String::new(),
            max_body_bytes: 1 << 20,
            sender_id: "server".into(),
        }
    }
}

/// `[compression]`: permessage-deflate (RFC 7692), on `/echo` and `/ws`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct CompressionSection {
    /// Whether the server accepts a client's permessage-deflate offer.
    pub enabled: bool,
    /// zlib level, 0 (store) to 9 (smallest, slowest).
    pub level: u8,
    /// Messages shorter than this many bytes are sent uncompressed; 0 compresses all.
    #[serde(with = "super::size::serde_size")]
    pub min_size: usize,
    /// Reset the server's compressor after every message: no compressor is kept per
    /// connection, and a broadcast is compressed once for all its recipients.
    pub server_no_context_takeover: bool,
    /// Ask clients to reset theirs, so no inflater is kept per connection between messages.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window the server compresses with, 9 to 15 (2^N bytes).
    pub server_max_window_bits: u8,
    /// Largest window clients are asked to compress with, 9 to 15, when they offer to limit it.
    pub client_max_window_bits: u8,
}

impl Default for CompressionSection {
    fn default() -> Self {
        Self {
            enabled: false,
            level: 6,
            min_size: 64,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServerSection {
    /// Address to listen on.
    pub listen: String,
    /// A second address, for operators: when set, `/metrics`, `/stats` and the publish API
    /// are served there only (the public port answers them 404). Empty: off.
    pub internal_listen: String,
    /// Connections served at once; over it new ones get 503 with `Retry-After`.
    pub max_connections: usize,
    /// Connections from one IP address; over it, 429. 0 = no limit.
    pub max_connections_per_ip: usize,
    /// Connections of one user on `/ws`; over it, 429. 0 = no limit.
    pub max_connections_per_user: usize,
    /// Handshakes per IP: burst size (token bucket). Over it, 429.
    pub handshake_rate_capacity: f64,
    /// Handshakes per IP: sustained rate per second. 0 turns the handshake rate limit off.
    pub handshake_rate_per_sec: f64,
    /// A handshake not complete after this long is dropped (slowloris).
    pub handshake_timeout: HumanDuration,
    /// A handshake must average at least this many bytes per second after its first second,
    /// or it is dropped. 0 = no minimum.
    pub min_handshake_bytes_per_sec: u64,
    /// Largest request head in bytes; over it, 431.
    #[serde(with = "super::size::serde_size")]
    pub max_header_bytes: usize,
    /// Most request header fields; over it, 431.
    pub max_headers: usize,
    /// How long to wait for the peer's close reply before closing TCP.
    pub close_timeout: HumanDuration,
    /// How long graceful shutdown waits for close replies before exiting.
    pub drain_timeout: HumanDuration,
    /// Subprotocols offered to clients (`Sec-WebSocket-Protocol`).
    pub subprotocols: Vec<String>,
    /// `SO_SNDBUF` of each accepted socket in bytes (the kernel reserves twice this); 0
    /// leaves it to the kernel's autotuning.
    #[serde(with = "super::size::serde_size")]
    pub socket_send_buffer: usize,
    /// Bytes of partly received messages held at once, all connections together; over it
    /// the connection whose message grew is closed 1013.
    #[serde(with = "super::size::serde_size")]
    pub max_buffered_bytes: usize,
    /// Proxies (addresses and CIDR blocks, IPv4 and IPv6) whose word about the client
    /// address is believed: `X-Forwarded-For`, `X-Real-IP`, the PROXY header. Empty: none.
    pub trusted_proxies: Vec<String>,
    /// Trusted proxies send a PROXY protocol header (v1 or v2, HAProxy's `send-proxy` /
    /// `send-proxy-v2`) before each connection. A malformed header drops the connection; a
    /// request without one is the proxy's own (its health checks).
    pub proxy_protocol: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            internal_listen: String::new(),
            max_connections: 10_000,
            max_connections_per_ip: 256,
            max_connections_per_user: 32,
            handshake_rate_capacity: 64.0,
            handshake_rate_per_sec: 16.0,
            handshake_timeout: HumanDuration::secs(10),
            min_handshake_bytes_per_sec: 64,
            max_header_bytes: 8192,
            max_headers: 32,
            close_timeout: HumanDuration::secs(5),
            drain_timeout: HumanDuration::secs(10),
            subprotocols: Vec::new(),
            socket_send_buffer: 64 * 1024,
            max_buffered_bytes: 256 << 20,
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
        }
    }
}

/// `[echo]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct EchoSection {
    /// Largest frame payload in bytes; over it, close 1009.
    #[serde(with = "super::size::serde_size")]
    pub max_frame: u64,
    /// Largest message in bytes; over it, close 1009.
    #[serde(with = "super::size::serde_size")]
    pub max_message: usize,
}

impl Default for EchoSection {
    fn default() -> Self {
        Self {
            max_frame: 16 << 20,
            max_message: 16 << 20,
        }
    }
}

/// `[hub]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct HubSection {
    /// Largest frame payload in bytes; over it, close 1009.
    #[serde(with = "super::size::serde_size")]
    pub max_frame: u64,
    /// Largest WebSocket message in bytes; over it, close 1009.
    #[serde(with = "super::size::serde_size")]
    pub max_message: usize,
    /// Largest request the hub handles; over it, a `message_too_large` error (stays open).
    #[serde(with = "super::size::serde_size")]
    pub max_request_bytes: usize,
    /// Rooms one connection may be in.
    pub max_rooms_per_connection: usize,
    /// Connections one room may hold.
    pub max_members_per_room: usize,
    /// Longest room name in bytes.
    pub max_room_name_len: usize,
    /// Unsent bytes allowed per connection; over it, close 1008 "slow consumer".
    #[serde(with = "super::size::serde_size")]
    pub max_outbound_bytes: usize,
    /// Output queued and not one byte written for this long: close 1008 "stalled" (every
    /// WebSocket connection, `/echo` too). 0s = off.
    pub stall_timeout: HumanDuration,
    /// How often the server pings each connection.
    pub ping_interval: HumanDuration,
    /// Close (1001 "idle timeout") a connection silent this long, pongs included.
    pub idle_timeout: HumanDuration,
    /// Who may join rooms no `[[rooms]]` rule matches.
    pub default_join: Access,
    /// Who may publish to rooms no `[[rooms]]` rule matches.
    pub default_publish: Access,
    /// Who may send a global broadcast (`chat` without a room).
    pub broadcast: Access,
    /// Private messages: `anyone`, `shared_room` (only to users sharing a room) or `nobody`.
    pub private_messages: PrivatePolicy,
}

impl Default for HubSection {
    fn default() -> Self {
        Self {
            max_frame: 1 << 20,
            max_message: 1 << 20,
            max_request_bytes: 64 * 1024,
            max_rooms_per_connection: 32,
            max_members_per_room: 100_000,
            max_room_name_len: 64,
            max_outbound_bytes: 1 << 20,
            stall_timeout: HumanDuration::secs(10),
            ping_interval: HumanDuration::secs(54),
            idle_timeout: HumanDuration::secs(60),
            default_join: Access::Authenticated,
            default_publish: Access::Authenticated,
            broadcast: Access::Authenticated,
            private_messages: PrivatePolicy::Anyone,
        }
    }
}

/// `[rate_limit]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RateLimitSection {
    /// Whether client messages on `/ws` are rate limited.
    pub enabled: bool,
    /// Burst: messages a user may send at once.
    pub capacity: f64,
    /// Sustained messages per second per user.
    pub refill_per_sec: f64,
    /// Rate-limited messages in a row before the connection is closed with 1008.
    pub abuse_strikes: u32,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            enabled: true,
            capacity: 10.0,
            refill_per_sec: 1.0,
            abuse_strikes: 20,
        }
    }
}

/// How clients authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AuthMode {
    /// Anyone may connect; the user id comes from `?user_id=` or is assigned. Development only.
    #[default]
    None,
    /// A JWT is required (`?token=` or `Authorization: Bearer`).
    Jwt,
    /// A JWT is optional: clients without one are anonymous guests (room rules can admit
    /// them with `anyone` and keep them out with `authenticated`); a bad token still gets 401.
    Optional,
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct AuthSection {
    /// `none` or `jwt`.
    pub mode: AuthMode,
    /// The one accepted algorithm: HS256, RS256, ES256 or EdDSA.
    pub alg: String,
    /// The HS256 shared secret.
    pub secret: String,
    /// A file holding the HS256 secret (instead of `secret`, which `ps` would show as a flag).
    pub secret_file: String,
    /// PEM file with the public key for RS256, ES256 or EdDSA.
    pub public_key_file: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: HumanDuration,
    /// Required `iss`, when set.
    pub issuer: String,
    /// Required `aud`, when set.
    pub audience: String,
    /// The claim holding the user id (string or number); `sub` is the fallback.
    pub user_claim: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            mode: AuthMode::None,
            alg: "HS256".into(),
            secret: String::new(),
            secret_file: String::new(),
            public_key_file: String::new(),
            leeway: HumanDuration::secs(5),
            issuer: String::new(),
            audience: String::new(),
            user_claim: "user_id".into(),
        }
    }
}

/// `[origin]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OriginSection {
    /// Allowed origins: exact (`https://app.example.com`) or wildcard hosts
    /// (`https://*.example.com`). Empty: same origin only (Origin's host must equal Host).
    pub allowed: Vec<String>,
    /// Whether requests without an `Origin` header (non-browser clients) are allowed.
    pub allow_missing: bool,
    /// Whether same-origin requests (the server's own chat page) pass besides `allowed`.
    pub allow_same_origin: bool,
}

impl Default for OriginSection {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            allow_missing: true,
            allow_same_origin: true,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogSection {
    /// `error`, `warn`, `info`, `debug` or `trace` (`RUST_LOG` wins when set).
    pub level: LogLevel,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
        }
    }
}

/// How much the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Start, stop, slow consumers and the like (the default).
    Info,
    /// Every connection.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The `env_logger` filter for this level.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}
