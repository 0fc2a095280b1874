//! Table tests of permessage-deflate negotiation: each parameter, bad offers, several offers,
//! and the client's checks of the answer.

use super::*;

/// A server that takes what the client offers and asks nothing more.
const LENIENT: DeflateConfig = DeflateConfig {
    level: 6,
    min_size: 0,
    server_no_context_takeover: false,
    client_no_context_takeover: false,
    server_max_window_bits: 15,
    client_max_window_bits: 15,
};

fn answer(offer: &str, config: &DeflateConfig) -> Option<String> {
    negotiate([offer], config).map(|a| a.response)
}

#[test]
fn each_parameter_of_an_offer() {
    let cases: &[(&str, Option<&str>)] = &[
        ("permessage-deflate", Some("permessage-deflate")),
        (
            "permessage-deflate; client_max_window_bits",
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            Some("permessage-deflate; server_max_window_bits=15"),
        ),
        (
            "permessage-deflate; server_max_window_bits=\"9\"",
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        (
            "permessage-deflate; client_max_window_bits=10",
            Some("permessage-deflate"),
        ),
        (
            "PerMessage-Deflate; Server_No_Context_Takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
    ];
    for (offer, expected) in cases {
        assert_eq!(answer(offer, &LENIENT).as_deref(), *expected, "{offer}");
    }
}

#[test]
fn agreed_parameters_follow_the_answer() {
    let agreed = negotiate(
        ["permessage-deflate; client_no_context_takeover; server_max_window_bits=12"],
        &LENIENT,
    )
    .unwrap()
    .params;
    assert_eq!(
        agreed,
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: true,
            server_max_window_bits: 12,
            client_max_window_bits: 15,
        }
    );
    assert_eq!(
        agreed.sending(Role::Server),
        Direction {
            no_context_takeover: false,
            max_window_bits: 12
        }
    );
    assert!(agreed.receiving(Role::Server).no_context_takeover);
    assert_eq!(agreed.sending(Role::Client), agreed.receiving(Role::Server));
}

#[test]
fn the_servers_own_limits_are_added() {
    let strict = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 11,
        client_max_window_bits: 10,
        ..LENIENT
    };
    let cases: &[(&str, &str)] = &[
        (
            // §7.1.1.1, §7.1.1.2, §7.1.2.1: each may be added to any answer.
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=11",
        ),
        (
            // §7.1.2.2: the client's window is limited only when it offered the parameter.
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=11; client_max_window_bits=10",
        ),
        (
            // The smaller of the offer and the server's limit.
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=11",
        ),
    ];
    for (offer, expected) in cases {
        assert_eq!(
            answer(offer, &strict).as_deref(),
            Some(*expected),
            "{offer}"
        );
    }
}

#[test]
fn bad_offers_are_declined() {
    let cases: &[(&str, Refusal)] = &[
        ("x-webkit-deflate-frame", Refusal::OtherExtension),
        ("permessage-deflate; foo", Refusal::UnknownParameter),
        ("permessage-deflate; foo=1", Refusal::UnknownParameter),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            Refusal::DuplicateParameter,
        ),
        (
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            Refusal::DuplicateParameter,
        ),
        (
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            Refusal::DuplicateParameter,
        ),
        (
            "permessage-deflate; server_no_context_takeover=1",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; client_no_context_takeover=true",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_max_window_bits",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_max_window_bits=7",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_max_window_bits=16",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_max_window_bits=010",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_max_window_bits=+9",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_max_window_bits=abc",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; client_max_window_bits=0",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; client_max_window_bits=100",
            Refusal::InvalidValue,
        ),
        // Valid, but zlib has no 2^8 window for raw DEFLATE: declined, not faked.
        (
            "permessage-deflate; server_max_window_bits=8",
            Refusal::Unsupported,
        ),
    ];
    for (offer, refusal) in cases {
        let items = super::super::header::parse_extensions(offer).unwrap();
        assert_eq!(
            evaluate_offer(&items[0], &LENIENT),
            Err(*refusal),
            "{offer}"
        );
        assert_eq!(answer(offer, &LENIENT), None, "{offer}");
    }
}

#[test]
fn bad_syntax_declines_every_offer() {
    for header in [
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate;, permessage-deflate",
        "permessage-deflate x",
    ] {
        assert_eq!(answer(header, &LENIENT), None, "{header}");
    }
}

#[test]
fn the_first_acceptable_offer_wins() {
    // RFC 7692 §5.2's example: a window the server may not support, then a fallback.
    let header = "permessage-deflate; server_max_window_bits=8, \
                  permessage-deflate; server_no_context_takeover, permessage-deflate";
    assert_eq!(
        answer(header, &LENIENT).as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // Offers may be spread over several header lines.
    let agreed = negotiate(
        [
            "foo; bar=1",
            "permessage-deflate; server_max_window_bits=x",
            "permessage-deflate",
        ],
        &LENIENT,
    );
    assert_eq!(
        agreed.map(|a| a.response).as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(negotiate(["foo, bar"], &LENIENT), None);
    assert_eq!(negotiate([], &LENIENT), None);
}

#[test]
fn client_offer_names_what_the_config_asks() {
    assert_eq!(
        client_offer(&LENIENT),
        "permessage-deflate; client_max_window_bits"
    );
    let strict = DeflateConfig {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 10,
        client_max_window_bits: 12,
        ..LENIENT
    };
    assert_eq!(
        client_offer(&strict),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=12"
    );
    // The server's answer to the client's offer is one the client accepts.
    for config in [LENIENT, strict, DeflateConfig::default()] {
        let agreement = negotiate([client_offer(&config).as_str()], &DeflateConfig::default())
            .expect("accepted");
        assert_eq!(
            accept_response(&agreement.response, &config),
            Ok(agreement.params),
            "{config:?}"
        );
    }
}

#[test]
fn client_checks_the_answer() {
    let asks = DeflateConfig {
        server_no_context_takeover: true,
        server_max_window_bits: 12,
        client_max_window_bits: 12,
        ..LENIENT
    };
    let good = accept_response(
        "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
         client_max_window_bits=11",
        &asks,
    );
    assert_eq!(
        good,
        Ok(DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: 10,
            client_max_window_bits: 11,
        })
    );
    let cases: &[(&str, Refusal)] = &[
        ("", Refusal::Malformed),
        (
            "permessage-deflate; server_no_context_takeover, permessage-deflate",
            Refusal::Malformed,
        ),
        (
            "permessage-deflate; server_no_context_takeover; x",
            Refusal::UnknownParameter,
        ),
        ("foo", Refusal::OtherExtension),
        // The offer asked for server_no_context_takeover: the answer must echo it.
        (
            "permessage-deflate; server_max_window_bits=10",
            Refusal::Unsupported,
        ),
        // The offer asked for a window of 2^12 at most: the answer must name one.
        (
            "permessage-deflate; server_no_context_takeover",
            Refusal::Unsupported,
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=13",
            Refusal::Unsupported,
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=13",
            Refusal::Unsupported,
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=8",
            Refusal::Unsupported,
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
            Refusal::InvalidValue,
        ),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            Refusal::DuplicateParameter,
        ),
    ];
    for (response, refusal) in cases {
        assert_eq!(
            accept_response(response, &asks),
            Err(*refusal),
            "{response}"
        );
    }
}
