//! A tokio-tungstenite echo server on a tokio current-thread runtime, the shape of
//! tokio-tungstenite's own `examples/echo-server.rs`: each connection is a task that forwards
//! its text and binary messages back (`forward` batches writes and flushes when the reader
//! has nothing more ready). Pings are answered by tungstenite itself.
//!
//! Usage: `tungstenite-echo [ADDR]` (default `127.0.0.1:9001`); any path is accepted.

use futures_util::{StreamExt, TryStreamExt, future};
use tokio::net::TcpStream;

fn main() -> std::io::Result<()> {
    wsloop_peers::serve("tungstenite-echo", || serve)
}

async fn serve(stream: TcpStream) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (write, read) = ws.split();
    let _ = read
        .try_filter(|msg| future::ready(msg.is_text() || msg.is_binary()))
        .forward(write)
        .await;
}
