//! systemd's readiness notifications (`sd_notify(3)`), without libsystemd: one datagram to
//! the Unix socket named in `$NOTIFY_SOCKET`.
//!
//! With `Type=notify` (deploy/wsloop.service) systemd counts the service as started only
//! when `READY=1` arrives, so units ordered after it, and `systemctl start` itself, wait
//! until wsloop listens; `STOPPING=1` says a graceful drain has begun. Without
//! `$NOTIFY_SOCKET` (not under systemd, or in tests) nothing is sent. A socket name starting
//! with `@` is in Linux's abstract namespace. A failure is logged and otherwise ignored:
//! the service works without notifications, systemd just waits for its timeout.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The message sent once the listeners are bound and the loop is about to run.
pub(super) const READY: &str = "READY=1\nSTATUS=listening";
/// The message sent when a graceful shutdown starts.
pub(super) const STOPPING: &str = "STOPPING=1\nSTATUS=draining connections";

/// Sends `state` to `$NOTIFY_SOCKET`, if set.
pub(super) fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket.to_string_lossy(), state) {
        log::warn!(
            "sd_notify {:?} to {}: {e}",
            first_line(state),
            socket.to_string_lossy()
        );
    }
}

fn first_line(state: &str) -> &str {
    state.lines().next().unwrap_or_default()
}

fn send(socket: &str, state: &str) -> io::Result<()> {
    let datagram = UnixDatagram::unbound()?;
    let sent = match socket.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
            datagram.send_to_addr(state.as_bytes(), &addr)?
        }
        None => datagram.send_to(state.as_bytes(), socket)?,
    };
    if sent != state.len() {
        return Err(io::Error::other("short datagram"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_per_state_to_a_path_and_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("wsloop-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), READY).unwrap();
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], READY.as_bytes());

        use std::os::linux::net::SocketAddrExt;
        let name = format!("wsloop-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_receiver = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), STOPPING).unwrap();
        let n = abstract_receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], STOPPING.as_bytes());
        assert!(send(dir.join("absent.sock").to_str().unwrap(), READY).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
