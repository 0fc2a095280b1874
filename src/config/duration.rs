//! Durations in the config file: `"10s"`, `"250ms"`, `"1m"`, `"1h"`, or a number of seconds.
//!
//! Parsing is [`humantime`]'s (minus calendar units, see [`parse_duration`]); a bare number
//! of seconds, which humantime refuses, stays ours. [`HumanDuration`]'s `Display` stays ours
//! too: it prints one unit (`90s`, `1500ms`), which `--print-config` has always shown, where
//! `humantime::format_duration` would print `1m 30s`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Duration` read from and written to the config in human form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct HumanDuration(pub Duration);

impl HumanDuration {
    /// `secs` seconds.
    pub(crate) const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

/// Parses `"1500ms"`, `"10s"`, `"2.5s"`, `"5m"`, `"1h"`, `"1d"`, `"1m 30s"` (or a bare number
/// of seconds).
///
/// Text with a unit goes to [`humantime::parse_duration`], which also takes `ns`, `us`,
/// `min`, `hours` and the like. Months and years (`M`, `month`, `y`, `year`) are refused:
/// they are calendar approximations, and `5M` (five months) is one shift key away from
/// `5m` (five minutes) in a timeout. Examples: the test `the_documented_forms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return bare_seconds(text);
    }
    if let Some(unit) = calendar_unit(text) {
        return Err(format!(
            "unit `{unit}` in `{text}` is not allowed for a timeout (use ms, s, m, h or d)"
        ));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 10s or 250ms: {e}"))
}

/// A bare number: seconds, fractions allowed (`"10"`, `"0.5"`).
fn bare_seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s or 250ms"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{text}` is out of range"))
}

/// The first month or year unit in `text`, which humantime would accept.
fn calendar_unit(text: &str) -> Option<&str> {
    text.split(|c: char| !c.is_alphabetic()).find(|unit| {
        matches!(
            *unit,
            "M" | "month" | "months" | "y" | "yr" | "yrs" | "year" | "years"
        )
    })
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(f64),
        }
        let duration = match Raw::deserialize(d)? {
            Raw::Text(text) => parse_duration(&text),
            Raw::Seconds(secs) => Duration::try_from_secs_f64(secs).map_err(|e| e.to_string()),
        };
        duration
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Was the function's doc example while the configuration was in the library (the
    /// binary's doc examples do not run).
    #[test]
    fn the_documented_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("5M").is_err());
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1.2.3").is_err());
    }

    #[test]
    fn takes_humantimes_forms_but_not_calendar_units() {
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 30min"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration(" 10s "), Ok(Duration::from_secs(10)));
        for calendar in ["5M", "1y", "2 months", "1year"] {
            let err = parse_duration(calendar).unwrap_err();
            assert!(err.contains("not allowed"), "{calendar}: {err}");
        }
    }

    #[test]
    fn errors_name_the_value() {
        let err = parse_duration("10 parsecs").unwrap_err();
        assert!(err.contains("`10 parsecs`"), "{err}");
        assert!(err.contains("parsecs"), "{err}");
    }

    #[test]
    fn displays_round_trip() {
        for text in ["250ms", "10s", "5m", "1h", "0s", "1500ms"] {
            let d = HumanDuration(parse_duration(text).unwrap());
            assert_eq!(parse_duration(&d.to_string()), Ok(d.0), "{text}");
        }
        assert_eq!(HumanDuration::secs(90).to_string(), "90s");
    }
}
