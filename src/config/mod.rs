//! Configuration: a TOML file, overridden by `WSLOOP_*` environment variables, overridden
//! by command-line flags; checked against the schema so a typo stops startup with a message
//! naming the key. `wsloop serve --print-config` shows the effective result.

mod build;
mod check;
mod duration;
mod layers;
mod schema;
mod secrets;
mod size;

pub use build::{redacted, to_server_config};
pub use check::{problems, redact_url};
pub use duration::{HumanDuration, parse_duration};
pub use layers::{ConfigError, ENV_PREFIX, Override, load};
pub use schema::{
    ApiSection, AuthMode, AuthSection, Config, EchoSection, Fsync, HistorySection, HubSection,
    LogLevel, LogSection, OriginSection, RateLimitSection, ServerSection,
};
pub use size::{format_size, parse_size};
