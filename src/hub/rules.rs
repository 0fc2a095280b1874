//! Authorization: who may join (and so read) and who may publish in which room.
//!
//! Rules are plain data from the configuration, matched by room-name pattern, first match
//! wins, with a default for rooms no pattern matches. Each says who may **join** and who
//! may **publish**:
//!
//! | access | who |
//! |---|---|
//! | `anyone` | every connection |
//! | `authenticated` | connections with a verified token (all connections when auth is off) |
//! | `claim` | the token's `rooms` claim lists the room or a pattern covering it |
//! | `owner` | the user whose id the pattern's `*` matches: `user:*` admits user 42 to `user:42` |
//! | `server` | no client: only the publish API writes (announcements, notifications) |
//!
//! [`RoomRules::allows`] is the one place these are checked; the hub calls it where a join
//! or a publish enters.

use serde::{Deserialize, Serialize};

/// Who may do something in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Every connection.
    Anyone,
    /// Connections with a verified token (every connection when authentication is off).
    Authenticated,
    /// The token's `rooms` claim covers the room.
    Claim,
    /// The user whose id the pattern's `*` matched.
    Owner,
    /// No client; only the server (the publish API).
    Server,
}

/// One rule: a room-name pattern and its access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomRule {
    /// A room name, or a pattern with `*` wildcards (`private-*`, `user:*`).
    pub pattern: String,
    /// Who may join (and so read).
    pub join: Access,
    /// Who may publish.
    pub publish: Access,
}

/// What a client wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Join the room.
    Join,
    /// Publish to the room.
    Publish,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Principal<'a> {
    /// The user id.
    pub user: &'a str,
    /// Whether the connection presented a verified token (or auth is off).
    pub authenticated: bool,
    /// Rooms and patterns from the token's `rooms` claim.
    pub claims: &'a [String],
}

/// The rules table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRules {
    /// Rules in order; the first whose pattern matches decides.
    pub rules: Vec<RoomRule>,
    /// Access for rooms no rule matches: (join, publish). Default: authenticated, authenticated.
    pub default: (Access, Access),
}

impl Default for RoomRules {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default: (Access::Authenticated, Access::Authenticated),
        }
    }
}

impl RoomRules {
    /// Whether `who` may do `action` in `room`.
    pub fn allows(&self, action: Action, room: &str, who: &Principal<'_>) -> bool {
        let matched = self
            .rules
            .iter()
            .find_map(|rule| glob(&rule.pattern, room).map(|star| (rule, star)));
        let (access, star) = match matched {
            Some((rule, star)) => (pick(action, rule.join, rule.publish), star),
            None => (pick(action, self.default.0, self.default.1), None),
        };
        match access {
            Access::Anyone => true,
            Access::Authenticated => who.authenticated,
            Access::Claim => {
                who.authenticated && who.claims.iter().any(|c| glob(c, room).is_some())
            }
            Access::Owner => who.authenticated && star == Some(who.user),
            Access::Server => false,
        }
    }
}

fn pick(action: Action, join: Access, publish: Access) -> Access {
    match action {
        Action::Join => join,
        Action::Publish => publish,
    }
}

/// Matches `text` against `pattern` (`*` matches any run of characters). On a match,
/// returns what the first `*` matched (`Some(None)` if the pattern has none).
pub fn glob<'t>(pattern: &str, text: &'t str) -> Option<Option<&'t str>> {
    let Some((head, rest)) = pattern.split_once('*') else {
        return (pattern == text).then_some(None);
    };
    let after = text.strip_prefix(head)?;
    // Try every split for the first star, shortest first, so the capture is exact when the
    // rest of the pattern is literal (`user:*` → the whole remainder).
    (0..=after.len())
        .filter(|&i| after.is_char_boundary(i))
        .find(|&i| glob(rest, &after[i..]).is_some())
        .map(|i| Some(&after[..i]))
}

/// Validates rule patterns at startup.
pub fn check_rules(rules: &[RoomRule]) -> Result<(), String> {
    for rule in rules {
        if rule.pattern.is_empty() {
            return Err("a [[rooms]] rule has an empty pattern".into());
        }
        let owner = rule.join == Access::Owner || rule.publish == Access::Owner;
        if owner && !rule.pattern.contains('*') {
            return Err(format!(
                "rule `{}` uses owner access but has no * for the user id",
                rule.pattern
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, join: Access, publish: Access) -> RoomRule {
        RoomRule {
            pattern: pattern.into(),
            join,
            publish,
        }
    }

    /// The example from the issue.
    fn example() -> RoomRules {
        RoomRules {
            rules: vec![
                rule("public-*", Access::Anyone, Access::Authenticated),
                rule("private-*", Access::Claim, Access::Claim),
                rule("user:*", Access::Owner, Access::Server),
                rule("announcements", Access::Anyone, Access::Server),
            ],
            default: (Access::Authenticated, Access::Authenticated),
        }
    }

    const NO_CLAIMS: &[String] = &[];

    fn user<'a>(id: &'a str, claims: &'a [String]) -> Principal<'a> {
        Principal {
            user: id,
            authenticated: true,
            claims,
        }
    }

    fn guest() -> Principal<'static> {
        Principal {
            user: "guest-1",
            authenticated: false,
            claims: NO_CLAIMS,
        }
    }

    #[test]
    fn glob_matching_and_capture() {
        assert_eq!(glob("user:*", "user:42"), Some(Some("42")));
        assert_eq!(glob("user:*", "user:"), Some(Some("")));
        assert_eq!(glob("user:*", "users:42"), None);
        assert_eq!(glob("a*c*e", "abcde"), Some(Some("b")));
        assert_eq!(glob("lobby", "lobby"), Some(None));
        assert_eq!(glob("lobby", "lobby2"), None);
        assert_eq!(glob("*", "anything"), Some(Some("anything")));
    }

    #[test]
    fn anyone_and_authenticated() {
        let r = example();
        assert!(r.allows(Action::Join, "public-news", &guest()));
        assert!(!r.allows(Action::Publish, "public-news", &guest()));
        assert!(r.allows(Action::Publish, "public-news", &user("1", NO_CLAIMS)));
        assert!(
            r.allows(Action::Join, "lobby", &user("1", NO_CLAIMS)),
            "default rule"
        );
        assert!(
            !r.allows(Action::Join, "lobby", &guest()),
            "default rule needs a token"
        );
    }

    #[test]
    fn claim_rooms_and_patterns() {
        let r = example();
        let claims = ["private-1".to_owned(), "private-team-*".to_owned()];
        assert!(r.allows(Action::Join, "private-1", &user("1", &claims)));
        assert!(r.allows(Action::Publish, "private-team-red", &user("1", &claims)));
        assert!(!r.allows(Action::Join, "private-2", &user("1", &claims)));
        assert!(!r.allows(Action::Join, "private-1", &user("1", NO_CLAIMS)));
    }

    #[test]
    fn owner_rooms() {
        let r = example();
        assert!(r.allows(Action::Join, "user:42", &user("42", NO_CLAIMS)));
        assert!(!r.allows(Action::Join, "user:42", &user("43", NO_CLAIMS)));
        assert!(!r.allows(Action::Join, "user:42", &user("4", NO_CLAIMS)));
        assert!(
            !r.allows(Action::Publish, "user:42", &user("42", NO_CLAIMS)),
            "server-only publish"
        );
    }

    #[test]
    fn server_rooms_refuse_every_client() {
        let r = example();
        assert!(r.allows(Action::Join, "announcements", &guest()));
        assert!(!r.allows(Action::Publish, "announcements", &user("admin", NO_CLAIMS)));
    }

    #[test]
    fn first_match_wins() {
        let r = RoomRules {
            rules: vec![
                rule("team-red", Access::Anyone, Access::Anyone),
                rule("team-*", Access::Server, Access::Server),
            ],
            default: (Access::Anyone, Access::Anyone),
        };
        assert!(r.allows(Action::Join, "team-red", &guest()));
        assert!(!r.allows(Action::Join, "team-blue", &user("1", NO_CLAIMS)));
    }

    #[test]
    fn owner_rules_need_a_star() {
        assert!(check_rules(&[rule("user:", Access::Owner, Access::Server)]).is_err());
        assert!(check_rules(&[rule("", Access::Anyone, Access::Anyone)]).is_err());
        assert!(check_rules(&example().rules).is_ok());
    }
}
