//! Agreeing on permessage-deflate's parameters in the opening handshake (RFC 7692 §5, §7.1).
//!
//! The server reads the client's offers in order of preference and accepts the first one it
//! can honour ([`negotiate`]); an offer it cannot honour is declined, which costs the
//! connection nothing but compression. The client writes its offer ([`client_offer`]) and
//! checks the server's answer ([`accept_response`]); an answer it cannot honour fails the
//! connection, as §7 requires.
//!
//! | parameter (§7.1) | in an offer | in the server's answer |
//! |---|---|---|
//! | `server_no_context_takeover` | the server must reset its window per message | always echoed; may be added |
//! | `client_no_context_takeover` | the client will reset its window | may be added |
//! | `server_max_window_bits=N` | the server's window must be ≤ 2^N | echoed with N or less; may be added |
//! | `client_max_window_bits[=N]` | the client can limit its window | may carry a limit; never without the offer |
//!
//! wsloop compresses with zlib (`flate2` on the `zlib-rs` backend), which honours windows of
//! 2^9 to 2^15 bytes. §7.1.2.1 allows `server_max_window_bits=8`, which no zlib supports for
//! raw DEFLATE: such an offer is declined ("A server declines an extension negotiation offer
//! with this parameter if the server doesn't support it"). Received messages are always
//! inflated with a 2^15 window, which reads any smaller one.

use std::fmt;

use super::header::{ExtensionItem, parse_extensions};
use crate::protocol::rules::Role;

/// The extension's name (RFC 7692 §7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";
/// The largest LZ77 window, 2^15 bytes: the default when no `*_max_window_bits` is agreed.
pub const MAX_WINDOW_BITS: u8 = 15;
/// The smallest window zlib compresses with (raw DEFLATE): 2^9 bytes.
pub const MIN_WINDOW_BITS: u8 = 9;

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// What this endpoint asks for and accepts. The same struct serves both roles: each field
/// names the side it constrains, as the parameters do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// zlib compression level, 0 (store) to 9 (smallest). Default: 6.
    pub level: u8,
    /// Messages with fewer payload bytes than this are sent uncompressed. Default: 64.
    pub min_size: usize,
    /// The server resets its compressor after every message: it then keeps no compressor
    /// per connection and compresses a broadcast once for all. Default: true.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message, so the receiver keeps no
    /// inflater between messages. Default: true.
    pub client_no_context_takeover: bool,
    /// Largest window the server compresses with, 9 to 15. Default: 15.
    pub server_max_window_bits: u8,
    /// Largest window the client is asked to compress with, 9 to 15. Default: 15.
    pub client_max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 6,
            min_size: 64,
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// The parameters both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its LZ77 window after each message (§7.1.1.1).
    pub server_no_context_takeover: bool,
    /// The client resets its LZ77 window after each message (§7.1.1.2).
    pub client_no_context_takeover: bool,
    /// The server's window is at most 2^this bytes (§7.1.2.1).
    pub server_max_window_bits: u8,
    /// The client's window is at most 2^this bytes (§7.1.2.2).
    pub client_max_window_bits: u8,
}

/// One direction of a connection: how its sender compresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Direction {
    /// The sender resets its window after each message.
    pub no_context_takeover: bool,
    /// The sender's window is at most 2^this bytes.
    pub max_window_bits: u8,
}

impl DeflateParams {
    /// How `role` compresses what it sends.
    pub fn sending(&self, role: Role) -> Direction {
        match role {
            Role::Server => Direction {
                no_context_takeover: self.server_no_context_takeover,
                max_window_bits: self.server_max_window_bits,
            },
            Role::Client => Direction {
                no_context_takeover: self.client_no_context_takeover,
                max_window_bits: self.client_max_window_bits,
            },
        }
    }

    /// How the peer of `role` compresses what `role` receives.
    pub fn receiving(&self, role: Role) -> Direction {
        match role {
            Role::Server => self.sending(Role::Client),
            Role::Client => self.sending(Role::Server),
        }
    }
}

/// An accepted offer: the parameters and the `Sec-WebSocket-Extensions` value to answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// What was agreed.
    pub params: DeflateParams,
    /// The response header value, e.g. `permessage-deflate; server_no_context_takeover`.
    pub response: String,
}

/// Why an offer, or a server's answer, cannot be accepted (RFC 7692 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Not `permessage-deflate`.
    OtherExtension,
    /// "an extension parameter not defined for use in an offer" (or a response).
    UnknownParameter,
    /// "multiple extension parameters with the same name".
    DuplicateParameter,
    /// "an extension parameter with an invalid value".
    InvalidValue,
    /// "The server doesn't support the offered configuration" (a window of 2^8), or the
    /// answer names a window the client did not allow or cannot use.
    Unsupported,
    /// The answer's header is not valid §9.1 syntax, or names more than one extension.
    Malformed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OtherExtension => "not permessage-deflate",
            Self::UnknownParameter => "unknown permessage-deflate parameter",
            Self::DuplicateParameter => "repeated permessage-deflate parameter",
            Self::InvalidValue => "invalid permessage-deflate parameter value",
            Self::Unsupported => "unsupported permessage-deflate window size",
            Self::Malformed => "malformed Sec-WebSocket-Extensions",
        })
    }
}

impl std::error::Error for Refusal {}

/// The four parameters as they appear in one offer or answer, each at most once.
#[derive(Debug, Default)]
struct Seen {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `Some(bits)` when present (a value is required).
    server_max_window_bits: Option<u8>,
    /// `Some(None)` when present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// §7.1.2.1: "a decimal integer value without leading zeroes between 8 to 15, inclusive".
fn window_bits(value: Option<&str>) -> Result<u8, Refusal> {
    match value {
        Some(v) if v.len() <= 2 && !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse()
                .ok()
                .filter(|bits| (8..=15).contains(bits))
                .ok_or(Refusal::InvalidValue)
        }
        _ => Err(Refusal::InvalidValue),
    }
}

/// Reads the parameters of one `permessage-deflate` item; the §7 refusals apply.
fn read_params(item: &ExtensionItem) -> Result<Seen, Refusal> {
    if !item.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return Err(Refusal::OtherExtension);
    }
    let mut seen = Seen::default();
    for param in &item.params {
        let value = param.value.as_deref();
        let name = param.name.to_ascii_lowercase();
        let duplicate = match name.as_str() {
            SERVER_NO_CONTEXT_TAKEOVER | CLIENT_NO_CONTEXT_TAKEOVER if value.is_some() => {
                return Err(Refusal::InvalidValue);
            }
            SERVER_NO_CONTEXT_TAKEOVER => {
                std::mem::replace(&mut seen.server_no_context_takeover, true)
            }
            CLIENT_NO_CONTEXT_TAKEOVER => {
                std::mem::replace(&mut seen.client_no_context_takeover, true)
            }
            SERVER_MAX_WINDOW_BITS => seen
                .server_max_window_bits
                .replace(window_bits(value)?)
                .is_some(),
            CLIENT_MAX_WINDOW_BITS => {
                let bits = value.map(|v| window_bits(Some(v))).transpose()?;
                seen.client_max_window_bits.replace(bits).is_some()
            }
            _ => return Err(Refusal::UnknownParameter),
        };
        if duplicate {
            return Err(Refusal::DuplicateParameter);
        }
    }
    Ok(seen)
}

/// The server's choice: the first offer in `header_values` that can be honoured under
/// `config`, with the answer to send; `None` declines the extension (the handshake goes on
/// without it). A header that is not valid §9.1 syntax declines every offer.
pub fn negotiate<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<Agreement> {
    let mut items = Vec::new();
    for value in header_values {
        items.extend(parse_extensions(value).ok()?);
    }
    items
        .iter()
        .find_map(|item| evaluate_offer(item, config).ok())
}

/// Accepts or declines one offer under `config` (§7, §7.1).
pub fn evaluate_offer(item: &ExtensionItem, config: &DeflateConfig) -> Result<Agreement, Refusal> {
    let offer = read_params(item)?;
    let server_cap = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    // §7.1.2.1: answer "with the same or smaller value as the offer", or decline.
    let server_bits = match offer.server_max_window_bits {
        Some(bits) if bits < MIN_WINDOW_BITS => return Err(Refusal::Unsupported),
        Some(bits) => bits.min(server_cap),
        None => server_cap,
    };
    // §7.1.2.2: without the parameter in the offer the answer "MUST NOT include" it.
    let client_bits = offer.client_max_window_bits.map(|offered| {
        let limit = offered.unwrap_or(MAX_WINDOW_BITS);
        (
            limit,
            limit.min(
                config
                    .client_max_window_bits
                    .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
            ),
        )
    });
    let params = DeflateParams {
        // §7.1.1.1: an offered server_no_context_takeover is accepted by echoing it.
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits.map_or(MAX_WINDOW_BITS, |(_, bits)| bits),
    };
    let mut response = String::from(PERMESSAGE_DEFLATE);
    if params.server_no_context_takeover {
        response.push_str("; server_no_context_takeover");
    }
    if params.client_no_context_takeover {
        response.push_str("; client_no_context_takeover");
    }
    if offer.server_max_window_bits.is_some() || server_bits < MAX_WINDOW_BITS {
        response.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    if let Some((limit, bits)) = client_bits
        && bits < limit
    {
        response.push_str(&format!("; client_max_window_bits={bits}"));
    }
    Ok(Agreement { params, response })
}

/// The client's offer for `config`: one `permessage-deflate` with what the config asks of
/// the server, and `client_max_window_bits` so the server may limit the client's window.
pub fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(PERMESSAGE_DEFLATE);
    if config.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    let server_bits = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    if server_bits < MAX_WINDOW_BITS {
        offer.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    let client_bits = config
        .client_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    if client_bits < MAX_WINDOW_BITS {
        offer.push_str(&format!("; client_max_window_bits={client_bits}"));
    } else {
        offer.push_str("; client_max_window_bits");
    }
    offer
}

/// The client's check of the server's answer to [`client_offer`] (§7: the client "MUST
/// _Fail the WebSocket Connection_" on an answer it cannot accept).
pub fn accept_response(response: &str, config: &DeflateConfig) -> Result<DeflateParams, Refusal> {
    let items = parse_extensions(response).map_err(|_| Refusal::Malformed)?;
    let [item] = items.as_slice() else {
        return Err(Refusal::Malformed);
    };
    let answer = read_params(item)?;
    let offered_server = config
        .server_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    let offered_client = config
        .client_max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    if config.server_no_context_takeover && !answer.server_no_context_takeover {
        // §7.1.1.1: accepting the offer means echoing the parameter.
        return Err(Refusal::Unsupported);
    }
    let server_bits = answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS);
    if server_bits > offered_server {
        return Err(Refusal::Unsupported);
    }
    let client_bits = match answer.client_max_window_bits {
        None => MAX_WINDOW_BITS.min(offered_client),
        // In an answer the parameter carries a value, within what the offer allowed.
        Some(None) => return Err(Refusal::InvalidValue),
        Some(Some(bits)) if bits > offered_client || bits < MIN_WINDOW_BITS => {
            return Err(Refusal::Unsupported);
        }
        Some(Some(bits)) => bits,
    };
    Ok(DeflateParams {
        server_no_context_takeover: answer.server_no_context_takeover,
        client_no_context_takeover: answer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

#[cfg(test)]
#[path = "negotiate_tests.rs"]
mod tests;
