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

pub(crate) use build::{redacted, to_server_config};
pub(crate) use check::redact_url;
pub(crate) use duration::parse_duration;
pub(crate) use layers::{ENV_PREFIX, Override, load};
pub(crate) use schema::{AuthMode, Config};
pub(crate) use size::parse_size;
