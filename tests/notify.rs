//! `wsloop serve` under a supervisor speaking systemd's notify protocol: the test binds the
//! Unix datagram socket systemd would, passes it in `$NOTIFY_SOCKET`, and receives
//! `READY=1` once the server accepts connections and `STOPPING=1` when SIGTERM starts the
//! drain.

mod cluster;

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use cluster::PATIENCE;
use cluster::procs::{Proc, TempDir, free_port};

fn next_datagram(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification before the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_once_listening_and_stopping_when_draining() {
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsloop"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("NOTIFY_SOCKET", &path);
    let mut server = Proc::spawn("wsloop serve", command, &dir.path().join("serve.log"));

    let ready = next_datagram(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // READY means listening: a connection succeeds at once, no retry.
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        .expect("listening when READY=1 arrives");

    server.signal("TERM");
    let stopping = next_datagram(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert!(
        server.wait_exit(PATIENCE).success(),
        "clean exit after the drain"
    );
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(socket.recv(&mut buf).is_err(), "nothing after STOPPING=1");
}
