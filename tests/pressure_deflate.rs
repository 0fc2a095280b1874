//! permessage-deflate edges over loopback (RFC 7692 §7.2.3.4): after a DEFLATE block with
//! BFINAL set, a message may hold only the one 0x00 octet the RFC's own example adds;
//! anything more is invalid data, close 1007.

mod common;

use common::{FIN, OP_TEXT, RSV1, Request, TestServer, fresh_key};
use wsloop::protocol::deflate::DeflateConfig;

/// "Hello" in one DEFLATE block with BFINAL set (§7.2.3.4, without its trailing 0x00).
const BFINAL_HELLO: [u8; 7] = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

/// A `/echo` connection with permessage-deflate agreed; the server sends plain frames.
fn open_compressed(server: &TestServer) -> common::Client {
    let request = Request::upgrade("/echo")
        .set("Sec-WebSocket-Key", &fresh_key())
        .set("Sec-WebSocket-Extensions", "permessage-deflate");
    let mut client = server.connect();
    client.send(&request.to_bytes());
    let response = client.read_response();
    assert_eq!(response.status, 101, "{response:?}");
    assert!(response.header("sec-websocket-extensions").is_some());
    client
}

#[test]
fn data_after_a_final_deflate_block_is_1007() {
    let server = TestServer::start_with(|c| {
        c.compression = Some(DeflateConfig {
            min_size: usize::MAX,
            ..DeflateConfig::default()
        });
    });
    // The RFC's example: the final block and one 0x00 octet.
    let mut client = open_compressed(&server);
    let rfc = [BFINAL_HELLO.as_slice(), &[0x00]].concat();
    client.send(&common::frame(FIN | RSV1 | OP_TEXT, &rfc));
    client.expect_text("Hello");

    // A second DEFLATE stream after the final block.
    let smuggled = [BFINAL_HELLO.as_slice(), &BFINAL_HELLO].concat();
    client.send(&common::frame(FIN | RSV1 | OP_TEXT, &smuggled));
    assert_eq!(client.read_close().0, Some(1007));
}
