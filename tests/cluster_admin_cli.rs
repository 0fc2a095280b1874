//! `wsloop admin` against two nodes on one Redis: the tables cover both nodes, and when
//! node b is stopped (SIGSTOP) the table holds what node a has while stderr names b as a
//! missing node, and the exit status is still 0.

mod cluster;

use std::process::{Command, Output};

use cluster::API_KEY;
use cluster::peer::Peer;
use cluster::procs::TempDir;
use cluster::servers::{Node, Redis};

/// `wsloop admin --url http://127.0.0.1:PORT --key API_KEY ARGS`, run to its end.
fn admin(port: u16, args: &[&str]) -> Output {
    let url = format!("http://127.0.0.1:{port}");
    Command::new(env!("CARGO_BIN_EXE_wsloop"))
        .args(["admin", "--url", &url, "--key", API_KEY])
        .args(args)
        .env_remove("WSLOOP_API_KEYS")
        .output()
        .expect("run wsloop admin")
}

/// Stdout's lines as whitespace-separated cells.
fn cells(output: &Output) -> Vec<Vec<String>> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

#[test]
fn tables_cover_every_node_and_name_the_missing_one() {
    let dir = TempDir::new("cluster-admin-cli");
    let redis = Redis::start(dir.path());
    let a = Node::start(dir.path(), "a", &redis);
    let b = Node::start(dir.path(), "b", &redis);
    let mut bob = Peer::connect(&b.ws_url("bob"), "bob");
    bob.join("lobby", None);
    let mut alice = Peer::connect(&a.ws_url("alice"), "alice");
    alice.join("annex", None);

    let info = admin(a.port, &["info"]);
    assert!(info.status.success(), "{info:?}");
    let printed = cells(&info);
    assert!(
        printed[2..]
            .iter()
            .any(|r| r[..4] == ["a", "0.1.0", "ready", "1"]),
        "{printed:?}"
    );
    assert!(
        printed[2..]
            .iter()
            .any(|r| r[..4] == ["b", "0.1.0", "ready", "1"]),
        "{printed:?}"
    );

    let rooms = admin(a.port, &["rooms"]);
    assert!(rooms.status.success(), "{rooms:?}");
    assert_eq!(
        cells(&rooms),
        [
            row(&["ROOM", "USERS", "CONNECTIONS"]),
            row(&["annex", "1", "1"]),
            row(&["lobby", "1", "1"])
        ],
        "node a's table has node b's room too"
    );
    assert!(rooms.stderr.is_empty(), "{rooms:?}");

    b.signal("STOP");
    let rooms = admin(a.port, &["rooms"]);
    b.signal("CONT");
    assert!(rooms.status.success(), "{rooms:?}");
    assert_eq!(
        cells(&rooms),
        [
            row(&["ROOM", "USERS", "CONNECTIONS"]),
            row(&["annex", "1", "1"])
        ]
    );
    assert_eq!(String::from_utf8_lossy(&rooms.stderr), "missing nodes: b\n");
}
