//! Secrets read from files (`auth.secret_file`, `api.keys_file`, `cluster.redis_url_file`),
//! so they need not be on the command line, where `ps` shows them to every local user.
//!
//! A file's content (without its trailing newline) fills the key; `api.keys_file` holds one
//! key per line. Setting both a key and its file is an error, as is an unreadable file.

use super::layers::ConfigError;
use super::schema::Config;

/// Reads every `*_file` secret that is set into its key.
pub(super) fn resolve(config: &mut Config) -> Result<(), ConfigError> {
    if let Some(text) = read("auth.secret_file", &config.auth.secret_file)? {
        refuse_both("auth.secret", !config.auth.secret.is_empty())?;
        config.auth.secret = text.trim_end_matches(['\r', '\n']).to_owned();
    }
    if let Some(text) = read("api.keys_file", &config.api.keys_file)? {
        refuse_both("api.keys", !config.api.keys.is_empty())?;
        config.api.keys = text
            .lines()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(text) = read("cluster.redis_url_file", &config.cluster.redis_url_file)? {
        refuse_both("cluster.redis_url", !config.cluster.redis_url.is_empty())?;
        config.cluster.redis_url = text.trim().to_owned();
    }
    Ok(())
}

/// The content of `path` when set.
fn read(key: &str, path: &str) -> Result<Option<String>, ConfigError> {
    if path.is_empty() {
        return Ok(None);
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| ConfigError(format!("{key}: cannot read {path}: {e}")))
}

fn refuse_both(key: &str, set: bool) -> Result<(), ConfigError> {
    if set {
        return Err(ConfigError(format!(
            "{key} and {key}_file are both set: keep one"
        )));
    }
    Ok(())
}
