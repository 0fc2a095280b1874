//! `wsloop token`: mint a development JWT, so trying auth takes one minute.

use std::time::SystemTime;

use crate::config::parse_duration;
use wsloop::auth::jwt::parse_algorithm;
use wsloop::auth::{MintRequest, mint};
use wsloop::hub::valid_user_id;

/// Flags of `wsloop token`.
#[derive(Debug, clap::Args)]
pub(super) struct TokenArgs {
    /// The user id to put in the token (`user_id` and `sub` claims).
    #[arg(long)]
    user: String,
    /// How long the token is valid, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// HS256 secret (the server's `auth.secret`).
    #[arg(long, env = "WSLOOP_AUTH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Algorithm: HS256, RS256, ES256 or EdDSA.
    #[arg(long, default_value = "HS256")]
    alg: String,
    /// PEM private key for RS256, ES256 or EdDSA.
    #[arg(long)]
    private_key: Option<String>,
    /// Rooms (or patterns) to grant in the `rooms` claim, comma-separated.
    #[arg(long, value_delimiter = ',')]
    rooms: Vec<String>,
    /// `aud` claim.
    #[arg(long)]
    aud: Option<String>,
    /// `iss` claim.
    #[arg(long)]
    iss: Option<String>,
}

/// Prints a signed token on stdout.
pub(super) fn run(args: &TokenArgs) -> Result<(), String> {
    parse_algorithm(&args.alg).map_err(|e| format!("--alg: {e}"))?;
    if !valid_user_id(&args.user) {
        return Err(format!(
            "--user `{}`: a user id is 1-64 printable ASCII characters without spaces",
            args.user
        ));
    }
    let ttl = parse_duration(&args.ttl).map_err(|e| format!("--ttl: {e}"))?;
    let key = match (&args.private_key, &args.secret) {
        (Some(path), _) => std::fs::read(path).map_err(|e| format!("--private-key {path}: {e}"))?,
        (None, Some(secret)) if args.alg == "HS256" => secret.clone().into_bytes(),
        (None, _) if args.alg == "HS256" => {
            return Err("--secret (or WSLOOP_AUTH_SECRET) is required for HS256".into());
        }
        (None, _) => return Err(format!("--private-key is required for {}", args.alg)),
    };
    let request = MintRequest {
        user: &args.user,
        ttl,
        alg: &args.alg,
        key: &key,
        rooms: &args.rooms,
        audience: args.aud.as_deref(),
        issuer: args.iss.as_deref(),
    };
    println!("{}", mint(&request, SystemTime::now())?);
    Ok(())
}
