//! The protocol without the engine: an echo server on blocking `std::net`, one connection
//! at a time, no mio. `wsloop::protocol` does all RFC 6455 asks of a server and never
//! touches a socket: we hand it bytes, it hands back events and the bytes to send.
//! Run it: `cargo run --release --example sans_io_echo -- 127.0.0.1:9003`.
use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};

use wsloop::protocol::handshake::{HeadLimits, HeadParser, validate_upgrade, write_accept};
use wsloop::protocol::{CloseState, Decoded, Event, Limits, MessageKind, Read, Session};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("sans-IO echo on ws://{addr}/ (any path, one connection at a time)");
    for stream in listener.incoming() {
        if let Err(e) = serve(stream?) {
            eprintln!("connection ended: {e}");
        }
    }
    Ok(())
}

/// Reads more bytes into `buf`; `false` at the peer's EOF.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0; 16 * 1024];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn serve(mut stream: TcpStream) -> io::Result<()> {
    // 1. The opening handshake (§4.2): parse the request head as it arrives, check it is
    //    a valid upgrade, answer 101 with the accept key (or the precise refusal).
    let mut buf = Vec::new();
    let mut parser = HeadParser::new(HeadLimits::default());
    let (head, used) = loop {
        if !fill(&mut stream, &mut buf)? {
            return Ok(());
        }
        match parser.parse(&buf) {
            Ok(Decoded::Complete(head, used)) => break (head, used),
            Ok(Decoded::Partial) => {}
            Err(e) => {
                return stream.write_all(
                    format!("HTTP/1.1 {} {}\r\n\r\n", e.status(), e.reason()).as_bytes(),
                );
            }
        }
    };
    let mut out = Vec::new();
    match validate_upgrade(&head, &[]) {
        Ok(upgrade) => write_accept(&upgrade, &[], &mut out),
        Err(refusal) => refusal.response().encode(&mut out),
    }
    stream.write_all(&out)?;
    if !out.starts_with(b"HTTP/1.1 101") {
        return Ok(());
    }
    buf.drain(..used); // Frames may have come with the head.
    // 2. Frames (§5): the session unmasks in place, reassembles fragments, checks UTF-8
    //    and the close rules, and writes pongs and the close reply into `out` itself.
    let mut session = Session::server(Limits::default());
    loop {
        let mut pos = 0;
        loop {
            out.clear();
            let Read { consumed, event } = match session.read(&mut buf[pos..], &mut out) {
                Ok(read) => read,
                // A protocol error: `out` holds the close frame with the right code.
                Err(error) => {
                    return stream
                        .write_all(&out)
                        .map(|()| eprintln!("closed: {error}"));
                }
            };
            pos += consumed;
            // A message borrows the session's buffer, and replying needs the session:
            // copy it first (the engine avoids this copy by writing the frame itself).
            let reply = match event {
                Some(Event::Text(text)) => Some((MessageKind::Text, text.as_bytes().to_vec())),
                Some(Event::Binary(bytes)) => Some((MessageKind::Binary, bytes.to_vec())),
                Some(_) => None, // ping, pong, close: already answered in `out`
                None => break,   // need more bytes
            };
            if let Some((kind, payload)) = reply {
                let _ = session.send(kind, &payload, &mut out);
            }
            stream.write_all(&out)?;
        }
        buf.drain(..pos);
        // 3. The closing handshake (§7): once both close frames crossed, the server ends TCP.
        if session.close_state() == CloseState::Closed || !fill(&mut stream, &mut buf)? {
            return Ok(());
        }
    }
}
