//! `wsloop serve`: load the configuration (file, environment, flags) and run the loop.

use std::path::PathBuf;

use crate::config::{self, AuthMode, Config, Override};
use wsloop::server::Server;

/// Flags of `wsloop serve`. Each one overrides the config key named in its help.
#[derive(Debug, Default, clap::Args)]
pub(super) struct ServeArgs {
    /// TOML configuration file (see wsloop.example.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets hidden) and exit; non-zero if it would not
    /// start.
    #[arg(long)]
    print_config: bool,
    /// Validate the whole configuration (like nginx -t), list every problem, and exit:
    /// 0 if it would start, 1 if not.
    #[arg(long, conflicts_with = "print_config")]
    check: bool,
    /// server.listen: address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<String>,
    /// server.internal_listen: a second address where /metrics, /stats and the API are
    /// served instead of on --listen [default: none].
    #[arg(long)]
    internal_listen: Option<String>,
    /// server.max_connections [default: 10000].
    #[arg(long)]
    max_connections: Option<String>,
    /// server.max_connections_per_ip (0: no limit) [default: 256].
    #[arg(long)]
    max_connections_per_ip: Option<String>,
    /// server.max_connections_per_user (0: no limit) [default: 32].
    #[arg(long)]
    max_connections_per_user: Option<String>,
    /// server.handshake_rate_per_sec: handshakes per second per IP (0: no limit) [default: 16].
    #[arg(long)]
    handshake_rate: Option<String>,
    /// server.handshake_timeout, e.g. 10s [default: 10s].
    #[arg(long)]
    handshake_timeout: Option<String>,
    /// server.close_timeout, e.g. 5s [default: 5s].
    #[arg(long)]
    close_timeout: Option<String>,
    /// server.drain_timeout, e.g. 10s [default: 10s].
    #[arg(long)]
    drain_timeout: Option<String>,
    /// server.max_header_bytes, e.g. 8KiB [default: 8KiB].
    #[arg(long)]
    max_header_bytes: Option<String>,
    /// server.max_headers [default: 32].
    #[arg(long)]
    max_headers: Option<String>,
    /// echo.max_frame, e.g. 16MiB [default: 16MiB].
    #[arg(long)]
    max_frame: Option<String>,
    /// echo.max_message, e.g. 16MiB [default: 16MiB].
    #[arg(long)]
    max_message: Option<String>,
    /// hub.max_outbound_bytes: unsent bytes before "slow consumer" [default: 1MiB].
    #[arg(long)]
    max_outbound_bytes: Option<String>,
    /// hub.max_frame, e.g. 1MiB [default: 1MiB].
    #[arg(long)]
    hub_max_frame: Option<String>,
    /// hub.max_message, e.g. 1MiB [default: 1MiB].
    #[arg(long)]
    hub_max_message: Option<String>,
    /// hub.max_request_bytes: largest JSON request [default: 64KiB].
    #[arg(long)]
    max_request_bytes: Option<String>,
    /// hub.max_rooms_per_connection [default: 32].
    #[arg(long)]
    max_rooms_per_connection: Option<String>,
    /// hub.max_members_per_room [default: 100000].
    #[arg(long)]
    max_members_per_room: Option<String>,
    /// hub.ping_interval, e.g. 54s [default: 54s].
    #[arg(long)]
    ping_interval: Option<String>,
    /// hub.idle_timeout, e.g. 60s [default: 1m].
    #[arg(long)]
    idle_timeout: Option<String>,
    /// rate_limit.enabled: on or off [default: on].
    #[arg(long)]
    rate_limit: Option<String>,
    /// auth.mode: none, jwt or optional [default: none].
    #[arg(long)]
    auth: Option<String>,
    /// auth.secret: the HS256 shared secret (visible in `ps`: prefer WSLOOP_AUTH_SECRET or
    /// auth.secret_file).
    #[arg(long)]
    jwt_secret: Option<String>,
    /// auth.public_key_file: PEM public key for RS256/ES256/EdDSA.
    #[arg(long)]
    jwt_public_key: Option<String>,
    /// auth.alg: HS256, RS256, ES256 or EdDSA [default: HS256].
    #[arg(long)]
    jwt_alg: Option<String>,
    /// server.trusted_proxies: a proxy (address or CIDR block) whose X-Forwarded-For,
    /// X-Real-IP or PROXY header names the client (repeatable) [default: none].
    #[arg(long)]
    trusted_proxy: Vec<String>,
    /// server.proxy_protocol: on or off, trusted proxies send a PROXY v1/v2 header
    /// [default: off].
    #[arg(long)]
    proxy_protocol: Option<String>,
    /// tls.cert_file: PEM certificate chain; with --tls-key the listener speaks TLS
    /// (reloaded on SIGHUP) [default: none].
    #[arg(long)]
    tls_cert: Option<String>,
    /// tls.key_file: PEM private key (RSA, ECDSA or Ed25519) [default: none].
    #[arg(long)]
    tls_key: Option<String>,
    /// origin.allowed: an allowed origin, e.g. https://*.example.com (repeatable).
    #[arg(long)]
    allowed_origin: Vec<String>,
    /// cluster.redis_url: join the cluster on this Redis, e.g. redis://127.0.0.1:6379 (with a
    /// password, prefer WSLOOP_CLUSTER_REDIS_URL or cluster.redis_url_file).
    #[arg(long)]
    redis_url: Option<String>,
    /// cluster.node_id: this node's name on the bus.
    #[arg(long)]
    node_id: Option<String>,
    /// history.dir: keep room history on disk here, so restarts lose nothing.
    #[arg(long)]
    history_dir: Option<String>,
    /// api.keys: a key for POST /api/publish (repeatable); without one the API is off
    /// (visible in `ps`: prefer WSLOOP_API_KEYS or api.keys_file).
    #[arg(long)]
    api_key: Vec<String>,
    /// compression.enabled: on or off, permessage-deflate (RFC 7692) [default: off].
    #[arg(long)]
    compression: Option<String>,
    /// log.level: error, warn, info, debug or trace [default: info].
    #[arg(long)]
    log_level: Option<String>,
}

impl ServeArgs {
    /// The flags given, as configuration overrides.
    fn overrides(&self) -> Vec<Override> {
        let single = [
            ("server.listen", "--listen", &self.listen),
            (
                "server.internal_listen",
                "--internal-listen",
                &self.internal_listen,
            ),
            (
                "server.max_connections",
                "--max-connections",
                &self.max_connections,
            ),
            (
                "server.max_connections_per_ip",
                "--max-connections-per-ip",
                &self.max_connections_per_ip,
            ),
            (
                "server.max_connections_per_user",
                "--max-connections-per-user",
                &self.max_connections_per_user,
            ),
            (
                "server.handshake_rate_per_sec",
                "--handshake-rate",
                &self.handshake_rate,
            ),
            (
                "server.handshake_timeout",
                "--handshake-timeout",
                &self.handshake_timeout,
            ),
            (
                "server.close_timeout",
                "--close-timeout",
                &self.close_timeout,
            ),
            (
                "server.drain_timeout",
                "--drain-timeout",
                &self.drain_timeout,
            ),
            (
                "server.max_header_bytes",
                "--max-header-bytes",
                &self.max_header_bytes,
            ),
            ("server.max_headers", "--max-headers", &self.max_headers),
            ("echo.max_frame", "--max-frame", &self.max_frame),
            ("echo.max_message", "--max-message", &self.max_message),
            (
                "hub.max_outbound_bytes",
                "--max-outbound-bytes",
                &self.max_outbound_bytes,
            ),
            ("hub.max_frame", "--hub-max-frame", &self.hub_max_frame),
            (
                "hub.max_message",
                "--hub-max-message",
                &self.hub_max_message,
            ),
            (
                "hub.max_request_bytes",
                "--max-request-bytes",
                &self.max_request_bytes,
            ),
            (
                "hub.max_rooms_per_connection",
                "--max-rooms-per-connection",
                &self.max_rooms_per_connection,
            ),
            (
                "hub.max_members_per_room",
                "--max-members-per-room",
                &self.max_members_per_room,
            ),
            ("hub.ping_interval", "--ping-interval", &self.ping_interval),
            ("hub.idle_timeout", "--idle-timeout", &self.idle_timeout),
            ("rate_limit.enabled", "--rate-limit", &self.rate_limit),
            ("auth.mode", "--auth", &self.auth),
            ("auth.secret", "--jwt-secret", &self.jwt_secret),
            (
                "auth.public_key_file",
                "--jwt-public-key",
                &self.jwt_public_key,
            ),
            ("auth.alg", "--jwt-alg", &self.jwt_alg),
            ("log.level", "--log-level", &self.log_level),
            ("history.dir", "--history-dir", &self.history_dir),
            ("cluster.redis_url", "--redis-url", &self.redis_url),
            ("cluster.node_id", "--node-id", &self.node_id),
            ("compression.enabled", "--compression", &self.compression),
            ("tls.cert_file", "--tls-cert", &self.tls_cert),
            ("tls.key_file", "--tls-key", &self.tls_key),
            (
                "server.proxy_protocol",
                "--proxy-protocol",
                &self.proxy_protocol,
            ),
        ];
        let mut overrides: Vec<Override> = single
            .into_iter()
            .filter_map(|(key, flag, value)| {
                value.as_ref().map(|v| Override::new(key, v.clone(), flag))
            })
            .collect();
        if !self.api_key.is_empty() {
            overrides.push(Override {
                key: "api.keys".into(),
                values: self.api_key.clone(),
                source: "--api-key".into(),
            });
        }
        if !self.trusted_proxy.is_empty() {
            overrides.push(Override {
                key: "server.trusted_proxies".into(),
                values: self.trusted_proxy.clone(),
                source: "--trusted-proxy".into(),
            });
        }
        if !self.allowed_origin.is_empty() {
            overrides.push(Override {
                key: "origin.allowed".into(),
                values: self.allowed_origin.clone(),
                source: "--allowed-origin".into(),
            });
        }
        overrides
    }
}

/// Loads the configuration from the file, `WSLOOP_*` variables and `args`.
fn effective_config(args: &ServeArgs) -> Result<Config, String> {
    let env = std::env::vars().filter(|(k, _)| k.starts_with(config::ENV_PREFIX));
    config::load(args.config.as_deref(), env, args.overrides()).map_err(|e| e.to_string())
}

fn init_logging(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}

/// Runs `wsloop serve`.
pub(super) fn run(args: ServeArgs) -> Result<(), String> {
    let config = effective_config(&args)?;
    if args.print_config {
        print!("{}", config::redacted(&config));
    }
    let built = config::to_server_config(&config).map_err(|e| e.to_string());
    if args.check || args.print_config {
        return verdict(built.map(|_| ()), args.check);
    }
    init_logging(config.log.level.as_str());
    let server_config = built.map_err(|e| e.replace('\n', "\n  "))?;
    if config.auth.mode == AuthMode::None {
        log::warn!(
            "auth.mode = \"none\": anyone can connect as any user; use only for development"
        );
    }
    let mut server = Server::bind(server_config)
        .map_err(|e| format!("cannot listen on {}: {e}", config.server.listen))?;
    log_what_to_open(&config, server.local_addr(), server.internal_addr());
    server
        .handle_signals()
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    server.run().map_err(|e| format!("event loop failed: {e}"))
}

/// The outcome of `--check` or `--print-config`: every problem, one per line.
fn verdict(built: Result<(), String>, say_ok: bool) -> Result<(), String> {
    match built {
        Ok(()) => {
            if say_ok {
                println!("configuration OK");
            }
            Ok(())
        }
        Err(problems) => {
            let count = problems.lines().count();
            let s = if count == 1 { "" } else { "s" };
            Err(format!(
                "the configuration would not start ({count} problem{s}):\n  {}",
                problems.replace('\n', "\n  ")
            ))
        }
    }
}

/// The startup lines a newcomer needs: what to open, and which features are on.
fn log_what_to_open(
    config: &Config,
    addr: std::net::SocketAddr,
    internal: Option<std::net::SocketAddr>,
) {
    let (http, ws) = match config.tls.cert_file.is_empty() {
        true => ("http", "ws"),
        false => ("https", "wss"),
    };
    log::info!("chat page: {http}://{addr}/  hub: {ws}://{addr}/ws  echo: {ws}://{addr}/echo");
    match internal {
        Some(internal) => log::info!(
            "internal port: http://{internal}/metrics, /stats, /api/* and /admin (not on {addr})"
        ),
        None => log::info!(
            "/metrics, /stats, /api/* and /admin are on the public port (set \
             server.internal_listen to move them)"
        ),
    }
    let on_off = |on: bool| if on { "on" } else { "off" };
    let cluster = if config.cluster.redis_url.is_empty() {
        "off".to_owned()
    } else {
        config::redact_url(&config.cluster.redis_url)
    };
    let history = if config.history.dir.is_empty() {
        "memory"
    } else {
        config.history.dir.as_str()
    };
    log::info!(
        "auth: {}, compression: {}, cluster: {cluster}, history: {history}, publish API: {}",
        format!("{:?}", config.auth.mode).to_lowercase(),
        on_off(config.compression.enabled),
        on_off(!config.api.keys.is_empty()),
    );
}
