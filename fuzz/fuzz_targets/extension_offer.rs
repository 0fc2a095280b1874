//! Fuzz target: the `Sec-WebSocket-Extensions` parser and permessage-deflate negotiation
//! (RFC 6455 §9.1, RFC 7692 §7).
//!
//! Oracle: nothing panics; whatever parses prints back (every value quoted) to text that
//! parses to the same items; and any offer the server accepts gets an answer that a client
//! asking for nothing in particular accepts, with the same parameters for the server's side.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsloop::protocol::deflate::{
    DeflateConfig, ExtensionItem, accept_response, negotiate, parse_extensions,
};

/// A client that asks for nothing: it must accept every answer a server may give.
const ANY: DeflateConfig = DeflateConfig {
    level: 6,
    min_size: 0,
    server_no_context_takeover: false,
    client_no_context_takeover: false,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

fn print(items: &[ExtensionItem]) -> String {
    let mut text = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&item.name);
        for param in &item.params {
            text.push_str("; ");
            text.push_str(&param.name);
            if let Some(value) = &param.value {
                text.push_str(&format!("=\"{value}\""));
            }
        }
    }
    text
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(items) = parse_extensions(text) {
        let printed = print(&items);
        assert_eq!(parse_extensions(&printed).as_ref(), Ok(&items), "{printed}");
    }
    let config = DeflateConfig {
        server_max_window_bits: 9 + data.len() as u8 % 7,
        ..DeflateConfig::default()
    };
    if let Some(agreement) = negotiate(text.split('\n'), &config) {
        let accepted = accept_response(&agreement.response, &ANY);
        let params = accepted.unwrap_or_else(|e| panic!("{}: {e}", agreement.response));
        assert_eq!(
            params.server_no_context_takeover,
            agreement.params.server_no_context_takeover
        );
        assert_eq!(
            params.server_max_window_bits,
            agreement.params.server_max_window_bits
        );
        assert!(params.server_max_window_bits <= config.server_max_window_bits);
    }
});
