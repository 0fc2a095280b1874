//! Every rule a configuration must meet, checked at once, whether or not the feature a key
//! belongs to is on: a typo in a disabled section is found before someone turns it on.
//!
//! [`problems`] lists them all (`wsloop serve --check`); startup refuses a configuration
//! with any. Each message starts with the key at fault and says what is expected.

use std::net::SocketAddr;
use std::time::Duration;

use super::schema::{AuthMode, Config};
use wsloop::auth::OriginPolicy;
use wsloop::auth::jwt::parse_algorithm;
use wsloop::hub::rules::{Access, check_rules};

/// Every problem in `config`, each as `key: what is wrong (what is expected)`.
pub(super) fn problems(config: &Config) -> Vec<String> {
    let mut found = Problems(Vec::new());
    server(config, &mut found);
    limits(config, &mut found);
    timing(config, &mut found);
    rates(config, &mut found);
    auth(config, &mut found);
    access(config, &mut found);
    cluster(config, &mut found);
    compression(config, &mut found);
    found.0
}

/// `redis://user:password@host:6379/` with the password replaced by `***`, for anything
/// printed (`--print-config`, errors, logs).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let hidden = match rest[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{hidden}{}", &rest[at..])
}

/// Whether `url` is a Redis URL wsloop can use: `redis://`, or `rediss://` (TLS, verified
/// against the system roots; `SSL_CERT_FILE` names another CA bundle).
pub(crate) fn is_redis_url(url: &str) -> bool {
    url.starts_with("redis://") || url.starts_with("rediss://")
}

/// The problems found so far.
struct Problems(Vec<String>);

impl Problems {
    /// Records `problem` for `key` unless `ok`.
    fn require(&mut self, ok: bool, key: &str, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(format!("{key}: {}", problem()));
        }
    }
}

fn server(config: &Config, found: &mut Problems) {
    let s = &config.server;
    found.require(
        s.listen.parse::<SocketAddr>().is_ok(),
        "server.listen",
        || format!("`{}`: expected IP:PORT, e.g. 127.0.0.1:8080", s.listen),
    );
    let internal = s.internal_listen.parse::<SocketAddr>();
    found.require(
        s.internal_listen.is_empty() || internal.is_ok(),
        "server.internal_listen",
        || {
            format!(
                "`{}`: expected IP:PORT, e.g. 127.0.0.1:9090 (or empty for none)",
                s.internal_listen
            )
        },
    );
    found.require(
        internal.is_err() || s.internal_listen != s.listen,
        "server.internal_listen",
        || "must differ from server.listen".into(),
    );
    found.require(s.max_connections >= 1, "server.max_connections", || {
        "must be at least 1".into()
    });
    found.require(s.max_headers >= 1, "server.max_headers", || {
        "must be at least 1".into()
    });
    let t = &config.tls;
    found.require(
        t.cert_file.is_empty() == t.key_file.is_empty(),
        "tls",
        || "set both cert_file and key_file, or neither".into(),
    );
    let trusted = wsloop::server::TrustedProxies::parse(&s.trusted_proxies);
    if let Err(e) = &trusted {
        found.require(false, "server.trusted_proxies", || e.clone());
    }
    found.require(
        !s.proxy_protocol || !s.trusted_proxies.is_empty(),
        "server.proxy_protocol",
        || "needs server.trusted_proxies: the header is read from trusted proxies only".into(),
    );
    found.require(s.max_header_bytes >= 256, "server.max_header_bytes", || {
        "must be at least 256 bytes (a request line and a Host header)".into()
    });
}

fn limits(config: &Config, found: &mut Problems) {
    let (e, h) = (&config.echo, &config.hub);
    for (key, bytes) in [
        ("echo.max_frame", e.max_frame),
        ("echo.max_message", e.max_message as u64),
        ("hub.max_frame", h.max_frame),
        ("hub.max_message", h.max_message as u64),
        ("hub.max_request_bytes", h.max_request_bytes as u64),
        ("hub.max_outbound_bytes", h.max_outbound_bytes as u64),
        (
            "server.max_buffered_bytes",
            config.server.max_buffered_bytes as u64,
        ),
        ("api.max_body_bytes", config.api.max_body_bytes as u64),
    ] {
        found.require(bytes > 0, key, || "must be at least 1 byte".into());
    }
    found.require(
        h.max_request_bytes <= h.max_message,
        "hub.max_request_bytes",
        || "must not exceed hub.max_message (a larger request could never arrive)".into(),
    );
    found.require(
        h.max_rooms_per_connection >= 1,
        "hub.max_rooms_per_connection",
        || "must be at least 1".into(),
    );
    found.require(h.max_room_name_len >= 1, "hub.max_room_name_len", || {
        "must be at least 1".into()
    });
}

fn timing(config: &Config, found: &mut Problems) {
    let (s, h) = (&config.server, &config.hub);
    for (key, d) in [
        ("server.handshake_timeout", s.handshake_timeout.0),
        ("server.close_timeout", s.close_timeout.0),
        ("hub.ping_interval", h.ping_interval.0),
        ("hub.idle_timeout", h.idle_timeout.0),
        ("history.fsync_interval", config.history.fsync_interval.0),
    ] {
        found.require(d > Duration::ZERO, key, || "must be more than 0s".into());
    }
    found.require(
        h.ping_interval.0 < h.idle_timeout.0,
        "hub.ping_interval",
        || {
            format!(
                "{} must be less than hub.idle_timeout ({}), or idle clients are closed before \
                 they are pinged",
                h.ping_interval, h.idle_timeout
            )
        },
    );
}

fn rates(config: &Config, found: &mut Problems) {
    let (s, r) = (&config.server, &config.rate_limit);
    let non_negative = |v: f64| v.is_finite() && v >= 0.0;
    for (key, value) in [
        ("server.handshake_rate_capacity", s.handshake_rate_capacity),
        ("server.handshake_rate_per_sec", s.handshake_rate_per_sec),
        ("rate_limit.refill_per_sec", r.refill_per_sec),
    ] {
        found.require(non_negative(value), key, || {
            format!("{value} must be a number of at least 0")
        });
    }
    found.require(
        r.capacity.is_finite() && r.capacity >= 1.0,
        "rate_limit.capacity",
        || format!("{} must be at least 1 (a burst of one message)", r.capacity),
    );
    found.require(r.abuse_strikes >= 1, "rate_limit.abuse_strikes", || {
        "must be at least 1".into()
    });
}

fn auth(config: &Config, found: &mut Problems) {
    let a = &config.auth;
    let alg = parse_algorithm(&a.alg);
    found.require(alg.is_ok(), "auth.alg", || {
        alg.clone().err().unwrap_or_default()
    });
    let on = a.mode != AuthMode::None;
    found.require(
        !(on && a.alg == "HS256" && a.secret.is_empty()),
        "auth.secret",
        || "auth.mode = \"jwt\" with HS256 needs a secret (or --jwt-secret)".into(),
    );
    found.require(
        !(on && a.alg != "HS256" && a.public_key_file.is_empty()),
        "auth.public_key_file",
        || format!("{} needs a PEM public key file", a.alg),
    );
    if !a.public_key_file.is_empty() {
        let readable = std::fs::metadata(&a.public_key_file);
        found.require(readable.is_ok(), "auth.public_key_file", || {
            let e = readable.err().map(|e| e.to_string()).unwrap_or_default();
            format!("{}: {e}", a.public_key_file)
        });
    }
}

fn access(config: &Config, found: &mut Problems) {
    let origin = OriginPolicy::new(&config.origin.allowed, config.origin.allow_missing);
    found.require(origin.is_ok(), "origin.allowed", || {
        origin.err().unwrap_or_default()
    });
    let rules = check_rules(&config.rooms);
    found.require(rules.is_ok(), "rooms", || rules.err().unwrap_or_default());
    found.require(
        !matches!(config.hub.broadcast, Access::Claim | Access::Owner),
        "hub.broadcast",
        || "claim and owner apply to rooms; use anyone, authenticated or server".into(),
    );
}

fn cluster(config: &Config, found: &mut Problems) {
    let c = &config.cluster;
    let valid_token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    found.require(
        c.redis_url.is_empty() || is_redis_url(&c.redis_url),
        "cluster.redis_url",
        || {
            let url = redact_url(&c.redis_url);
            format!("`{url}`: expected redis://[:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS)")
        },
    );
    found.require(valid_token(&c.prefix), "cluster.prefix", || {
        "must be printable ASCII without spaces".into()
    });
    found.require(
        c.node_id.is_empty() || valid_token(&c.node_id),
        "cluster.node_id",
        || "must be printable ASCII without spaces".into(),
    );
}

fn compression(config: &Config, found: &mut Problems) {
    let c = &config.compression;
    found.require(c.level <= 9, "compression.level", || {
        format!("{} must be 0 to 9", c.level)
    });
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
        found.require((9..=15).contains(&bits), key, || {
            format!("{bits} must be 9 to 15 (zlib has no 2^8 window)")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_have_no_problems() {
        assert_eq!(problems(&Config::default()), Vec::<String>::new());
    }

    #[test]
    fn disabled_features_are_checked_and_every_problem_is_listed() {
        let mut c = Config::default();
        c.compression.level = 12; // compression is off
        c.rate_limit.enabled = false;
        c.rate_limit.capacity = -1.0;
        c.hub.ping_interval = c.hub.idle_timeout;
        c.server.handshake_rate_per_sec = -2.0;
        let found = problems(&c);
        for key in [
            "compression.level",
            "rate_limit.capacity",
            "hub.ping_interval",
            "server.handshake_rate_per_sec",
        ] {
            assert!(found.iter().any(|p| p.starts_with(key)), "{key}: {found:?}");
        }
        assert_eq!(found.len(), 4, "{found:?}");
    }

    #[test]
    fn listen_names_the_expected_form() {
        let mut c = Config::default();
        c.server.listen = "19108".into();
        let found = problems(&c);
        assert!(
            found[0].contains("expected IP:PORT, e.g. 127.0.0.1:8080"),
            "{found:?}"
        );
    }

    #[test]
    fn redis_passwords_are_hidden() {
        assert_eq!(
            redact_url("redis://:hunter2@h:6379/"),
            "redis://:***@h:6379/"
        );
        assert_eq!(redact_url("redis://u:p@w@h/0"), "redis://u:***@h/0");
        assert_eq!(redact_url("redis://secret@h"), "redis://***@h");
        assert_eq!(redact_url("redis://h:6379/"), "redis://h:6379/");
        assert_eq!(
            redact_url("rediss://default:hunter2@h:6380/0"),
            "rediss://default:***@h:6380/0"
        );
        assert_eq!(redact_url("nonsense"), "nonsense");
    }
}
