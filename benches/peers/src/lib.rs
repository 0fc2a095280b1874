//! What every peer server shares: one tokio current-thread runtime (one core, like wsloop's
//! one loop), a listener on the address given as the only argument (default
//! `127.0.0.1:9001`), and a task per accepted connection, with `TCP_NODELAY` set as wsloop
//! sets it.

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};

/// Runs `name` until the listener fails. `setup` runs inside the runtime once (it may spawn
/// tasks) and returns what each accepted connection is handed to.
pub fn serve<S, H, F>(name: &str, setup: S) -> std::io::Result<()>
where
    S: FnOnce() -> H,
    H: FnMut(TcpStream) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("{name} listening on {}", listener.local_addr()?);
        let mut handle = setup();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(handle(stream));
        }
    })
}
