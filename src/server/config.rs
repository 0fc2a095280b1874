//! The event loop's settings: where to listen and every limit, with documented defaults.

use std::net::SocketAddr;
use std::time::Duration;

use super::client_addr::TrustedProxies;
use super::tls::TlsFiles;
use crate::auth::{Authenticator, OriginPolicy};
use crate::cluster::RedisSettings;
use crate::hub::HubConfig;
use crate::protocol::Limits;
use crate::protocol::deflate::DeflateConfig;
use crate::protocol::handshake::HeadLimits;
use crate::ratelimit::Rate;

/// Settings for [`Server`](super::Server).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. Default: `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// A second address for operators: `/metrics`, `/stats` and the publish API are served
    /// there only, not on `listen`. Default: `None` (everything on `listen`).
    pub internal_listen: Option<SocketAddr>,
    /// Frame and message size limits on `/echo` and on apps without their own
    /// ([`super::App::limits`]). Default: 16 MiB each.
    pub limits: Limits,
    /// Request head limits. Default: 8 KiB, 32 headers.
    pub head: HeadLimits,
    /// A handshake not complete after this long is dropped. Default: 10 s.
    pub handshake_timeout: Duration,
    /// After sending a close frame, wait this long for the reply (and after the exchange, for
    /// the peer's EOF) before closing TCP (§7.1.1). Default: 5 s.
    pub close_timeout: Duration,
    /// The most connections served at once; over it, new ones get 503. Default: 10,000.
    pub max_connections: usize,
    /// How long graceful shutdown waits for close replies. Default: 10 s.
    pub drain_timeout: Duration,
    /// Subprotocols the server accepts, in no particular order. Default: none.
    pub subprotocols: Vec<String>,
    /// Frame and message limits on `/ws` (over them: close 1009). Default: 1 MiB each; the
    /// hub's own, smaller `max_message_bytes` answers with an error instead.
    pub hub_limits: Limits,
    /// The hub's limits (rooms, members, message size).
    pub hub: HubConfig,
    /// Send a ping to each WebSocket connection this often. Default: 54 s.
    pub ping_interval: Duration,
    /// Close (1001 "idle timeout") a connection that sent nothing, not even a pong, for this
    /// long. Default: 60 s.
    pub idle_timeout: Duration,
    /// Unsent bytes allowed per `/ws` connection; a recipient over it is closed with 1008
    /// "slow consumer". Default: 1 MiB.
    pub max_outbound_bytes: usize,
    /// A connection with output queued and not one byte written for this long is closed
    /// with 1008 "stalled". Zero = off. Default: 10 s.
    pub stall_timeout: Duration,
    /// `SO_SNDBUF` of every accepted socket, in bytes (the kernel reserves twice this); 0
    /// leaves the kernel's autotuning (up to megabytes per socket). Default: 64 KiB, so
    /// 10,000 stalled connections hold at most ~1.3 GB of kernel memory, not tens.
    pub socket_send_buffer: usize,
    /// Bytes of partly received messages held at once, all connections together; a read
    /// that grows one past it closes that connection with 1013 "server busy".
    /// Default: 256 MiB.
    pub max_buffered_bytes: usize,
    /// Connections from one IP address; over it, 429. 0 = no limit. Default: 256.
    pub max_connections_per_ip: usize,
    /// Connections of one user on `/ws`; over it, 429. 0 = no limit. Default: 32.
    pub max_connections_per_user: usize,
    /// Handshakes per IP (token bucket); over it, 429. `None` = no limit. Default: 64, 16/s.
    pub handshake_rate: Option<Rate>,
    /// A handshake must average this many bytes per second after its first second, or it is
    /// dropped (slowloris). 0 = no minimum. Default: 64.
    pub min_handshake_bytes_per_sec: u64,
    /// How handshakes are authenticated. Default: none.
    pub auth: Authenticator,
    /// Which origins may connect. Default: same origin, or no Origin header.
    pub origin: OriginPolicy,
    /// The publish API. Default: off (no keys).
    pub api: ApiConfig,
    /// Where the history log lives; `None` keeps history in memory only. Default: `None`.
    pub history_dir: Option<std::path::PathBuf>,
    /// How often the history log is fsynced; `None` leaves it to the OS. Default: 1 s.
    pub history_fsync: Option<Duration>,
    /// Redis and this node's id, when clustered. Default: `None` (one node on its own).
    pub cluster: Option<(RedisSettings, String)>,
    /// permessage-deflate (RFC 7692), offered to clients that ask for it. `None` = off.
    /// Default: off.
    pub compression: Option<DeflateConfig>,
    /// Proxies whose word about the client address is believed (`X-Forwarded-For`,
    /// `X-Real-IP`, the PROXY header). Default: none.
    pub trusted_proxies: TrustedProxies,
    /// Trusted proxies send a PROXY protocol header (v1 or v2) before each connection's
    /// bytes; a malformed one drops the connection, and without one the proxy speaks for
    /// itself (or through `X-Forwarded-For`). Default: off.
    pub proxy_protocol: bool,
    /// TLS on `listen` (not on `internal_listen`): certificate chain and key files,
    /// reloaded on SIGHUP. Default: `None` (plain TCP).
    pub tls: Option<TlsFiles>,
}

/// Settings of `POST /api/publish`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Accepted bearer keys; empty turns the API off (404). Default: none.
    pub keys: Vec<String>,
    /// Largest request body (the API's, and an app's `on_http`); over it, 413. Default: 1 MiB.
    pub max_body_bytes: usize,
    /// `sender_id` of published messages. Default: `server`.
    pub sender_id: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            max_body_bytes: 1 << 20,
            sender_id: "server".into(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            internal_listen: None,
            limits: Limits::default(),
            head: HeadLimits::default(),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(10),
            subprotocols: Vec::new(),
            hub_limits: Limits {
                max_frame: 1 << 20,
                max_message: 1 << 20,
            },
            hub: HubConfig::default(),
            ping_interval: Duration::from_secs(54),
            idle_timeout: Duration::from_secs(60),
            max_outbound_bytes: 1 << 20,
            stall_timeout: Duration::from_secs(10),
            socket_send_buffer: 64 * 1024,
            max_buffered_bytes: 256 << 20,
            max_connections_per_ip: 256,
            max_connections_per_user: 32,
            handshake_rate: Some(Rate {
                capacity: 64.0,
                refill_per_sec: 16.0,
            }),
            min_handshake_bytes_per_sec: 64,
            auth: Authenticator::None,
            origin: OriginPolicy::default(),
            api: ApiConfig::default(),
            history_dir: None,
            history_fsync: Some(Duration::from_secs(1)),
            cluster: None,
            compression: None,
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol: false,
            tls: None,
        }
    }
}
