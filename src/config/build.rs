//! From the configuration file's view to the running server's: parse addresses, read key
//! files, build the verifier and the origin policy, and refuse what cannot work.

use std::net::SocketAddr;

use super::check::{is_redis_url, problems, redact_url};
use super::layers::ConfigError;
use super::schema::{AuthMode, Config, Fsync};
use wsloop::auth::jwt::parse_algorithm;
use wsloop::auth::{Authenticator, JwtSettings, JwtVerifier, KeySource, OriginPolicy};
use wsloop::cluster::RedisSettings;

use wsloop::hub::HubConfig;
use wsloop::hub::history::HistoryConfig;
use wsloop::hub::rules::{Access, RoomRules, check_rules};

use wsloop::protocol::Limits;
use wsloop::protocol::deflate::DeflateConfig;
use wsloop::protocol::handshake::HeadLimits;
use wsloop::ratelimit::Rate;
use wsloop::server::{ApiConfig, ServerConfig, TlsFiles, TrustedProxies};

fn err(key: &str, problem: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{key}: {problem}"))
}

/// Builds the server's settings; every error names the key at fault. A configuration with
/// any of the [`problems`] is refused with all of them, one per line.
pub(crate) fn to_server_config(config: &Config) -> Result<ServerConfig, ConfigError> {
    let found = problems(config);
    if !found.is_empty() {
        return Err(ConfigError(found.join("\n")));
    }
    let s = &config.server;
    let listen: SocketAddr = s
        .listen
        .parse()
        .map_err(|e| err("server.listen", format!("`{}`: {e}", s.listen)))?;
    let internal_listen = match s.internal_listen.as_str() {
        "" => None,
        addr => Some(
            addr.parse::<SocketAddr>()
                .map_err(|e| err("server.internal_listen", format!("`{addr}`: {e}")))?,
        ),
    };
    if s.max_connections == 0 {
        return Err(err("server.max_connections", "must be at least 1"));
    }
    let handshake_rate = (s.handshake_rate_per_sec > 0.0).then_some(Rate {
        capacity: s.handshake_rate_capacity.max(1.0),
        refill_per_sec: s.handshake_rate_per_sec,
    });
    let h = &config.hub;
    if h.idle_timeout.0.is_zero() || h.ping_interval.0.is_zero() {
        return Err(err(
            "hub.ping_interval",
            "ping_interval and idle_timeout must be positive",
        ));
    }
    let r = &config.rate_limit;
    if r.enabled && (r.capacity < 1.0 || r.refill_per_sec < 0.0) {
        return Err(err(
            "rate_limit.capacity",
            "capacity must be at least 1 and refill_per_sec not negative",
        ));
    }
    let hub = HubConfig {
        max_rooms_per_connection: h.max_rooms_per_connection,
        max_members_per_room: h.max_members_per_room,
        max_room_name_len: h.max_room_name_len,
        max_message_bytes: h.max_request_bytes,
        max_listed_users: HubConfig::default().max_listed_users,
        rate_limit: Rate {
            capacity: r.capacity,
            refill_per_sec: r.refill_per_sec,
        },
        rate_limit_enabled: r.enabled,
        abuse_strikes: r.abuse_strikes.max(1),
        rules: RoomRules {
            rules: config.rooms.clone(),
            default: (h.default_join, h.default_publish),
        },
        broadcast: h.broadcast,
        private_messages: h.private_messages,
        history: HistoryConfig {
            size: config.history.size,
            ttl: config.history.ttl.0,
            max_rooms: config.history.max_rooms.max(1),
            max_bytes: config.history.max_bytes,
        },
        max_held_bytes: h.max_outbound_bytes,
    };
    check_rules(&config.rooms).map_err(|e| err("rooms", e))?;
    if matches!(h.broadcast, Access::Claim | Access::Owner) {
        return Err(err(
            "hub.broadcast",
            "claim and owner apply to rooms; use anyone, authenticated or server",
        ));
    }
    let origin = OriginPolicy::new(&config.origin.allowed, config.origin.allow_missing)
        .map_err(|e| err("origin.allowed", e))?
        .with_same_origin(config.origin.allow_same_origin);
    let trusted_proxies =
        TrustedProxies::parse(&s.trusted_proxies).map_err(|e| err("server.trusted_proxies", e))?;
    let tls = match (config.tls.cert_file.as_str(), config.tls.key_file.as_str()) {
        ("", "") => None,
        ("", _) | (_, "") => {
            return Err(err("tls", "set both cert_file and key_file, or neither"));
        }
        (cert, key) => Some(TlsFiles {
            cert: cert.into(),
            key: key.into(),
        }),
    };
    Ok(ServerConfig {
        tls,
        listen,
        trusted_proxies,
        proxy_protocol: s.proxy_protocol,
        internal_listen,
        limits: Limits {
            max_frame: config.echo.max_frame,
            max_message: config.echo.max_message,
        },
        head: HeadLimits {
            max_bytes: s.max_header_bytes,
            max_headers: s.max_headers,
        },
        handshake_timeout: s.handshake_timeout.0,
        close_timeout: s.close_timeout.0,
        max_connections: s.max_connections,
        drain_timeout: s.drain_timeout.0,
        subprotocols: s.subprotocols.clone(),
        hub_limits: Limits {
            max_frame: h.max_frame,
            max_message: h.max_message,
        },
        hub,
        ping_interval: h.ping_interval.0,
        idle_timeout: h.idle_timeout.0,
        max_outbound_bytes: h.max_outbound_bytes,
        stall_timeout: h.stall_timeout.0,
        socket_send_buffer: s.socket_send_buffer,
        max_buffered_bytes: s.max_buffered_bytes,
        max_connections_per_ip: s.max_connections_per_ip,
        max_connections_per_user: s.max_connections_per_user,
        handshake_rate,
        min_handshake_bytes_per_sec: s.min_handshake_bytes_per_sec,
        auth: authenticator(config)?,
        origin,
        cluster: cluster_settings(config)?,
        history_dir: Some(&config.history.dir)
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from),
        history_fsync: match config.history.fsync {
            Fsync::Interval => Some(config.history.fsync_interval.0),
            Fsync::Never => None,
        },
        compression: compression(config)?,
        api: ApiConfig {
            keys: config
                .api
                .keys
                .iter()
                .filter(|k| !k.is_empty())
                .cloned()
                .collect(),
            max_body_bytes: config.api.max_body_bytes,
            sender_id: config.api.sender_id.clone(),
        },
    })
}

/// Redis settings and the node id, when `cluster.redis_url` is set.
fn cluster_settings(config: &Config) -> Result<Option<(RedisSettings, String)>, ConfigError> {
    let c = &config.cluster;
    if c.redis_url.is_empty() {
        return Ok(None);
    }
    if !is_redis_url(&c.redis_url) {
        return Err(err(
            "cluster.redis_url",
            format!(
                "`{}` must start with redis:// or rediss:// (TLS)",
                redact_url(&c.redis_url)
            ),
        ));
    }
    let valid_token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !valid_token(&c.prefix) {
        return Err(err(
            "cluster.prefix",
            "must be printable ASCII without spaces",
        ));
    }
    let node = if c.node_id.is_empty() {
        wsloop::cluster::default_node_id()
    } else {
        c.node_id.clone()
    };
    if !valid_token(&node) {
        return Err(err(
            "cluster.node_id",
            "must be printable ASCII without spaces",
        ));
    }
    let settings = RedisSettings {
        url: c.redis_url.clone(),
        prefix: c.prefix.clone(),
        history_size: config.history.size,
        history_ttl: config.history.ttl.0,
        when_down: match c.when_redis_down {
            super::schema::WhenRedisDown::Refuse => wsloop::cluster::WhenDown::Refuse,
            super::schema::WhenRedisDown::Local => wsloop::cluster::WhenDown::Local,
        },
        node: node.clone(),
    };
    Ok(Some((settings, node)))
}

/// permessage-deflate settings, when `compression.enabled`.
fn compression(config: &Config) -> Result<Option<DeflateConfig>, ConfigError> {
    let c = &config.compression;
    if !c.enabled {
        return Ok(None);
    }
    if c.level > 9 {
        return Err(err("compression.level", "must be 0 to 9"));
    }
    for (key, bits) in [
        (
            "compression.server_max_window_bits",
            c.server_max_window_bits,
        ),
        (
            "compression.client_max_window_bits",
            c.client_max_window_bits,
        ),
    ] {
        if !(9..=15).contains(&bits) {
            return Err(err(key, "must be 9 to 15 (zlib has no 2^8 window)"));
        }
    }
    Ok(Some(DeflateConfig {
        level: c.level,
        min_size: c.min_size,
        server_no_context_takeover: c.server_no_context_takeover,
        client_no_context_takeover: c.client_no_context_takeover,
        server_max_window_bits: c.server_max_window_bits,
        client_max_window_bits: c.client_max_window_bits,
    }))
}

/// The JWT verifier, when `auth.mode = "jwt"`.
fn authenticator(config: &Config) -> Result<Authenticator, ConfigError> {
    let a = &config.auth;
    if a.mode == AuthMode::None {
        return Ok(Authenticator::None);
    }
    parse_algorithm(&a.alg).map_err(|e| err("auth.alg", e))?;
    let pem;
    let key = if a.alg == "HS256" {
        if a.secret.is_empty() {
            return Err(err(
                "auth.secret",
                "auth.mode = \"jwt\" with HS256 needs a secret (or --jwt-secret)",
            ));
        }
        KeySource::Secret(a.secret.as_bytes())
    } else {
        if a.public_key_file.is_empty() {
            return Err(err(
                "auth.public_key_file",
                format!("{} needs a PEM public key file", a.alg),
            ));
        }
        pem = std::fs::read(&a.public_key_file).map_err(|e| {
            err(
                "auth.public_key_file",
                format!("{}: {e}", a.public_key_file),
            )
        })?;
        KeySource::PublicPem(&pem)
    };
    let settings = JwtSettings {
        alg: &a.alg,
        key,
        leeway: a.leeway.0,
        issuer: Some(a.issuer.as_str()).filter(|s| !s.is_empty()),
        audience: Some(a.audience.as_str()).filter(|s| !s.is_empty()),
        user_claim: &a.user_claim,
        server_id: &config.api.sender_id,
    };
    JwtVerifier::new(&settings)
        .map(|v| match a.mode {
            AuthMode::Optional => Authenticator::OptionalJwt(Box::new(v)),
            _ => Authenticator::Jwt(Box::new(v)),
        })
        .map_err(|e| err("auth.alg", e))
}

/// The configuration as TOML with secrets replaced by `***`, for `--print-config`.
pub(crate) fn redacted(config: &Config) -> String {
    let mut shown = config.clone();
    if !shown.auth.secret.is_empty() {
        shown.auth.secret = "***".into();
    }
    for key in &mut shown.api.keys {
        *key = "***".into();
    }
    shown.cluster.redis_url = redact_url(&shown.cluster.redis_url);
    toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build() {
        let server = to_server_config(&Config::default()).unwrap();
        assert_eq!(server.listen.to_string(), "127.0.0.1:8080");
        assert!(!server.auth.is_on());
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = Config::default();
        c.server.listen = "nowhere".into();
        assert!(
            to_server_config(&c)
                .unwrap_err()
                .0
                .starts_with("server.listen")
        );
        let mut c = Config::default();
        c.auth.mode = AuthMode::Jwt;
        assert!(
            to_server_config(&c)
                .unwrap_err()
                .0
                .starts_with("auth.secret")
        );
        c.auth.alg = "RS256".into();
        assert!(
            to_server_config(&c)
                .unwrap_err()
                .0
                .starts_with("auth.public_key_file")
        );
        c.auth.alg = "HS999".into();
        c.auth.public_key_file = "/dev/null".into();
        assert!(to_server_config(&c).unwrap_err().0.starts_with("auth.alg"));
        let mut c = Config::default();
        c.origin.allowed = vec!["example.com".into()];
        assert!(
            to_server_config(&c)
                .unwrap_err()
                .0
                .starts_with("origin.allowed")
        );
    }

    #[test]
    fn compression_is_off_by_default_and_checked_when_on() {
        assert_eq!(
            to_server_config(&Config::default()).unwrap().compression,
            None
        );
        let mut c = Config::default();
        c.compression.enabled = true;
        let on = to_server_config(&c).unwrap().compression;
        assert_eq!(on, Some(DeflateConfig::default()));
        c.compression.level = 10;
        let e = to_server_config(&c).unwrap_err().0;
        assert!(e.starts_with("compression.level"), "{e}");
        c.compression.level = 6;
        c.compression.server_max_window_bits = 8;
        let e = to_server_config(&c).unwrap_err().0;
        assert!(e.starts_with("compression.server_max_window_bits"), "{e}");
        c.compression.server_max_window_bits = 15;
        c.compression.client_max_window_bits = 16;
        let e = to_server_config(&c).unwrap_err().0;
        assert!(e.starts_with("compression.client_max_window_bits"), "{e}");
    }

    #[test]
    fn print_config_hides_the_secret() {
        let mut c = Config::default();
        c.auth.secret = "hunter2".into();
        let text = redacted(&c);
        assert!(!text.contains("hunter2"));
        assert!(text.contains("secret = \"***\""));
        c.cluster.redis_url = "redis://:hunter2@h:6379/".into();
        let text = redacted(&c);
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("redis://:***@h:6379/"), "{text}");
    }
}
