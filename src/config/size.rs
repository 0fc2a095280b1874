//! Sizes in bytes, in human form: `32`, `16KiB`, `16k`, `1MiB`, `1m`, `1GiB`. One parser for
//! the config file, `WSLOOP_*` variables, `wsloop serve` flags and `wsloop bench -s`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};

/// `32`, `16KiB`, `16k`, `1MiB`, `1m`, `1GiB` → bytes (binary units, case-insensitive).
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 32, 16KiB or 1MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// `bytes` in the largest binary unit that divides it: `16MiB`, `8KiB`, `100`.
pub(super) fn format_size(bytes: u64) -> String {
    Size(bytes).to_string()
}

/// A byte count shown in human form.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (scale, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
            if n >= scale && n.is_multiple_of(scale) {
                return write!(f, "{}{unit}", n / scale);
            }
        }
        write!(f, "{n}")
    }
}

/// Serde helpers for a size key: reads a whole number or a string with a unit, writes the
/// human form (`--print-config`). Use with `#[serde(with = "size")]`.
pub(super) mod serde_size {
    use super::*;

    /// A size as text (`16MiB`).
    pub(in crate::config) fn serialize<T, S>(value: &T, s: S) -> Result<S::Ok, S::Error>
    where
        T: Copy + TryInto<u64>,
        S: Serializer,
    {
        let bytes = (*value).try_into().unwrap_or(u64::MAX);
        s.serialize_str(&format_size(bytes))
    }

    /// A whole number of bytes, or a string with a unit.
    pub(in crate::config) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: TryFrom<usize>,
        D: Deserializer<'de>,
    {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        let bytes = match Raw::deserialize(d) {
            Ok(Raw::Bytes(n)) => usize::try_from(n).map_err(|_| format!("{n} is too large")),
            Ok(Raw::Text(text)) => parse_size(&text),
            Err(_) => Err("expected a size: a whole number of bytes or 16KiB, 1MiB".into()),
        };
        bytes
            .and_then(|b| T::try_from(b).map_err(|_| format!("{b} is too large")))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32"), Ok(32));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("16k"), Ok(16384));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("x").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for (bytes, text) in [(16 << 20, "16MiB"), (8192, "8KiB"), (100, "100"), (0, "0")] {
            assert_eq!(format_size(bytes), text);
            assert_eq!(parse_size(text), Ok(bytes as usize));
        }
        assert_eq!(format_size(1536), "1536");
    }
}
