//! Where configuration comes from: the TOML file, then `WSLOOP_*` environment variables,
//! then command-line flags, each layer overriding the one before.
//!
//! An environment variable names a key as `WSLOOP_<SECTION>_<KEY>` in upper case, e.g.
//! `WSLOOP_SERVER_LISTEN` or `WSLOOP_AUTH_SECRET`; list keys take comma-separated values.
//! Every layer is checked against the schema: an unknown key, an unknown `WSLOOP_*`
//! variable, or a value of the wrong type stops startup with a message naming it.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use super::schema::Config;

/// A configuration problem, naming the key (and the file or variable) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One override from the environment or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Override {
    /// The key as `section.key`.
    pub key: String,
    /// The value(s) as text; several for list keys given by a repeated flag.
    pub values: Vec<String>,
    /// Where it came from, for error messages (`--listen`, `WSLOOP_SERVER_LISTEN`).
    pub source: String,
}

impl Override {
    /// A single-valued override.
    pub(crate) fn new(key: &str, value: impl Into<String>, source: &str) -> Self {
        Self {
            key: key.into(),
            values: vec![value.into()],
            source: source.into(),
        }
    }
}

/// The prefix of configuration environment variables.
pub(crate) const ENV_PREFIX: &str = "WSLOOP_";

/// Builds the effective configuration from a file, the environment and flags.
pub(crate) fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: Vec<Override>,
) -> Result<Config, ConfigError> {
    let mut table = match file {
        Some(path) => read_file(path)?,
        None => Table::new(),
    };
    let defaults = Table::try_from(Config::default()).map_err(|e| ConfigError(e.to_string()))?;
    let mut overrides = env_overrides(env, &defaults)?;
    overrides.extend(flags);
    for o in &overrides {
        apply(&mut table, &defaults, o)?;
        Config::deserialize(Value::Table(table.clone()))
            .map_err(|e| ConfigError(format!("{}: {}", o.source, plain(e.message()))))?;
    }
    let mut config =
        Config::deserialize(Value::Table(table)).map_err(|e| ConfigError(plain(e.message())))?;
    super::secrets::resolve(&mut config)?;
    Ok(config)
}

/// serde's wording for a number of the wrong kind, in the words a user would use.
fn plain(message: &str) -> String {
    ["usize", "u64", "u32", "u16", "u8"]
        .iter()
        .fold(message.to_owned(), |m, t| {
            m.replace(&format!("expected {t}"), "expected a whole number")
        })
        .replace("expected f64", "expected a number")
}

/// Reads and checks the file; toml's own errors name the key and the line.
fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str::<Config>(&text)
        .map_err(|e| ConfigError(plain(&format!("{}: {e}", path.display()))))?;
    toml::from_str::<Table>(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// Turns `WSLOOP_SECTION_KEY=value` variables into overrides; unknown ones are errors.
fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
    defaults: &Table,
) -> Result<Vec<Override>, ConfigError> {
    let mut found = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = find_key(&rest.to_ascii_lowercase(), defaults).ok_or_else(|| {
            let hint = closest_variable(&name, defaults)
                .map(|v| format!("; did you mean {v}?"))
                .unwrap_or_default();
            ConfigError(format!(
                "unknown environment variable {name}: no configuration key matches{hint}"
            ))
        })?;
        let values = if is_list(defaults, &key) {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        } else {
            vec![value]
        };
        found.push(Override {
            key,
            values,
            source: name,
        });
    }
    found.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(found)
}

/// Maps `section_key` to `section.key` when the schema has that key.
fn find_key(flat: &str, defaults: &Table) -> Option<String> {
    defaults.iter().find_map(|(section, keys)| {
        let key = flat.strip_prefix(section.as_str())?.strip_prefix('_')?;
        keys.as_table()?
            .contains_key(key)
            .then(|| format!("{section}.{key}"))
    })
}

/// The known variable nearest to `name` (edit distance at most a third of its length).
fn closest_variable(name: &str, defaults: &Table) -> Option<String> {
    let known = defaults.iter().flat_map(|(section, keys)| {
        let keys = keys
            .as_table()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or(Vec::new());
        keys.into_iter()
            .map(move |key| format!("{ENV_PREFIX}{section}_{key}").to_ascii_uppercase())
    });
    known
        .map(|v| (edit_distance(name, &v), v))
        .filter(|(d, _)| *d <= name.len() / 3)
        .min()
        .map(|(_, v)| v)
}

/// Levenshtein distance between two ASCII-ish strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

fn default_of<'a>(defaults: &'a Table, key: &str) -> Option<&'a Value> {
    let (section, name) = key.split_once('.')?;
    defaults.get(section)?.as_table()?.get(name)
}

fn is_list(defaults: &Table, key: &str) -> bool {
    matches!(default_of(defaults, key), Some(Value::Array(_)))
}

/// Sets one override into `table`, typed like the key's default.
fn apply(table: &mut Table, defaults: &Table, o: &Override) -> Result<(), ConfigError> {
    let default = default_of(defaults, &o.key).ok_or_else(|| {
        ConfigError(format!(
            "{}: unknown configuration key `{}`",
            o.source, o.key
        ))
    })?;
    let value = typed(default, &o.values).map_err(|e| ConfigError(format!("{}: {e}", o.source)))?;
    let (section, name) = o.key.split_once('.').unwrap_or((&o.key, ""));
    let entry = table
        .entry(section)
        .or_insert_with(|| Value::Table(Table::new()));
    let Value::Table(section_table) = entry else {
        return Err(ConfigError(format!("`{section}` must be a table")));
    };
    section_table.insert(name.to_owned(), value);
    Ok(())
}

/// Parses text into a value of the same TOML type as `default`.
fn typed(default: &Value, values: &[String]) -> Result<Value, String> {
    let one = || values.last().cloned().unwrap_or_default();
    Ok(match default {
        Value::Array(_) => Value::Array(values.iter().cloned().map(Value::String).collect()),
        Value::Boolean(_) => Value::Boolean(match one().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            other => return Err(format!("`{other}` is not a boolean (true/false)")),
        }),
        Value::Integer(_) => Value::Integer(
            one()
                .trim()
                .parse()
                .map_err(|_| format!("`{}`: expected a whole number", one()))?,
        ),
        Value::Float(_) => Value::Float(
            one()
                .trim()
                .parse()
                .map_err(|_| format!("`{}`: expected a number", one()))?,
        ),
        _ => Value::String(one()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::AuthMode;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A minimal temp file helper (no extra dependency).
    mod tempfile_path {
        pub(super) struct TempFile(pub(super) std::path::PathBuf);
        impl TempFile {
            pub(super) fn new(text: &str) -> Self {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let n = N.fetch_add(1, Ordering::SeqCst);
                let path = std::env::temp_dir()
                    .join(format!("wsloop-cfg-{}-{n}.toml", std::process::id()));
                std::fs::write(&path, text).unwrap();
                Self(path)
            }
        }
        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    /// The commented example documents every key with its default, and nothing else.
    #[test]
    fn example_file_is_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("wsloop.example.toml");
        assert_eq!(
            load(Some(&path), vec![], vec![]).unwrap(),
            Config::default()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let example: Table = toml::from_str(&text).unwrap();
        let defaults = Table::try_from(Config::default()).unwrap();
        for (section, keys) in &defaults {
            for key in keys
                .as_table()
                .map(|t| t.keys().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                let documented = example.get(section).and_then(|s| s.get(key)).is_some();
                assert!(documented, "wsloop.example.toml lacks {section}.{key}");
            }
        }
    }

    #[test]
    fn defaults_without_anything() {
        assert_eq!(load(None, vec![], vec![]).unwrap(), Config::default());
    }

    #[test]
    fn file_then_env_then_flags() {
        let file = write(
            "[server]\nlisten = \"0.0.0.0:1\"\nmax_connections = 5\n[auth]\nsecret = \"file\"\n",
        );
        let env = env(&[
            ("WSLOOP_SERVER_LISTEN", "0.0.0.0:2"),
            ("WSLOOP_AUTH_MODE", "jwt"),
            ("PATH", "/bin"),
        ]);
        let flags = vec![Override::new("server.listen", "0.0.0.0:3", "--listen")];
        let config = load(Some(&file.0), env, flags).unwrap();
        assert_eq!(config.server.listen, "0.0.0.0:3");
        assert_eq!(config.server.max_connections, 5);
        assert_eq!(config.auth.mode, AuthMode::Jwt);
        assert_eq!(config.auth.secret, "file");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let file = write("[server]\nlisen = \"x\"\n");
        let err = load(Some(&file.0), vec![], vec![]).unwrap_err().0;
        assert!(err.contains("lisen"), "{err}");
        let file = write("[nonsense]\nx = 1\n");
        assert!(
            load(Some(&file.0), vec![], vec![])
                .unwrap_err()
                .0
                .contains("nonsense")
        );
    }

    #[test]
    fn bad_value_in_file_is_named() {
        let file = write("[server]\nmax_connections = \"many\"\n");
        let err = load(Some(&file.0), vec![], vec![]).unwrap_err().0;
        assert!(err.contains("max_connections"), "{err}");
        let file = write("[server]\nhandshake_timeout = \"10 parsecs\"\n");
        let err = load(Some(&file.0), vec![], vec![]).unwrap_err().0;
        assert!(
            err.contains("handshake_timeout") || err.contains("parsecs"),
            "{err}"
        );
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = load(None, env(&[("WSLOOP_SERVER_LISEN", "x")]), vec![])
            .unwrap_err()
            .0;
        assert!(err.contains("WSLOOP_SERVER_LISEN"), "{err}");
        let err = load(
            None,
            env(&[("WSLOOP_SERVER_MAX_CONNECTIONS", "lots")]),
            vec![],
        )
        .unwrap_err()
        .0;
        assert!(
            err.contains("WSLOOP_SERVER_MAX_CONNECTIONS") && err.contains("lots"),
            "{err}"
        );
        let err = load(None, env(&[("WSLOOP_HUB_PING_INTERVAL", "soon")]), vec![])
            .unwrap_err()
            .0;
        assert!(err.contains("WSLOOP_HUB_PING_INTERVAL"), "{err}");
        let err = load(None, env(&[("WSLOOP_AUTH_MODE", "magic")]), vec![])
            .unwrap_err()
            .0;
        assert!(err.contains("WSLOOP_AUTH_MODE"), "{err}");
    }

    #[test]
    fn unknown_variables_suggest_the_closest_key_and_numbers_say_whole() {
        let err = load(None, env(&[("WSLOOP_SERVER_LISEN", "x")]), vec![])
            .unwrap_err()
            .0;
        assert!(err.contains("did you mean WSLOOP_SERVER_LISTEN?"), "{err}");
        let err = load(None, env(&[("WSLOOP_NONSENSE", "x")]), vec![])
            .unwrap_err()
            .0;
        assert!(!err.contains("did you mean"), "{err}");
        let file = write("[server]\nmax_connections = \"lots\"\n");
        let err = load(Some(&file.0), vec![], vec![]).unwrap_err().0;
        assert!(err.contains("expected a whole number"), "{err}");
        let err = load(None, env(&[("WSLOOP_HUB_MAX_FRAME", "lots")]), vec![])
            .unwrap_err()
            .0;
        assert!(err.contains("16KiB"), "sizes name their form: {err}");
    }

    #[test]
    fn sizes_take_units_everywhere() {
        let file = write("[hub]\nmax_frame = \"64KiB\"\nmax_message = 1024\n");
        let env = env(&[("WSLOOP_ECHO_MAX_MESSAGE", "2MiB")]);
        let flags = vec![Override::new(
            "server.max_header_bytes",
            "16k",
            "--max-header-bytes",
        )];
        let config = load(Some(&file.0), env, flags).unwrap();
        assert_eq!(config.hub.max_frame, 64 << 10);
        assert_eq!(config.hub.max_message, 1024);
        assert_eq!(config.echo.max_message, 2 << 20);
        assert_eq!(config.server.max_header_bytes, 16 << 10);
    }

    #[test]
    fn secrets_come_from_files() {
        let secret = write("s3cr3t\n");
        let keys = write("k1\n\nk2\n");
        let path = |f: &tempfile_path::TempFile| f.0.to_string_lossy().into_owned();
        let env = env(&[
            ("WSLOOP_AUTH_SECRET_FILE", &path(&secret)),
            ("WSLOOP_API_KEYS_FILE", &path(&keys)),
        ]);
        let config = load(None, env, vec![]).unwrap();
        assert_eq!(config.auth.secret, "s3cr3t");
        assert_eq!(config.api.keys, ["k1", "k2"]);
        let both = env_pairs(&[
            ("WSLOOP_AUTH_SECRET", "x"),
            ("WSLOOP_AUTH_SECRET_FILE", &path(&secret)),
        ]);
        let err = load(None, both, vec![]).unwrap_err().0;
        assert!(err.contains("both set"), "{err}");
    }

    fn env_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        env(pairs)
    }

    #[test]
    fn lists_from_env_and_repeated_flags() {
        let config = load(
            None,
            env(&[("WSLOOP_ORIGIN_ALLOWED", "https://a.com, https://*.b.com")]),
            vec![],
        )
        .unwrap();
        assert_eq!(config.origin.allowed, ["https://a.com", "https://*.b.com"]);
        let flag = Override {
            key: "origin.allowed".into(),
            values: vec!["https://c.com".into(), "https://d.com".into()],
            source: "--allowed-origin".into(),
        };
        let config = load(None, vec![], vec![flag]).unwrap();
        assert_eq!(config.origin.allowed, ["https://c.com", "https://d.com"]);
    }

    #[test]
    fn booleans_and_floats() {
        let config = load(
            None,
            env(&[
                ("WSLOOP_RATE_LIMIT_ENABLED", "off"),
                ("WSLOOP_RATE_LIMIT_CAPACITY", "2.5"),
            ]),
            vec![],
        )
        .unwrap();
        assert!(!config.rate_limit.enabled);
        assert_eq!(config.rate_limit.capacity, 2.5);
    }
}
