//! The roster's rules: a user counted once however many places, notes against snapshots,
//! dead nodes, and the bound on remote entries.

use super::*;

fn opened(room: &str) -> Rosters {
    let mut rosters = Rosters::default();
    assert!(rosters.open(&Rc::from(room)));
    rosters
}

fn snapshot(entries: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    entries
        .iter()
        .map(|(n, users)| {
            (
                (*n).to_owned(),
                users.iter().map(|u| (*u).to_owned()).collect(),
            )
        })
        .collect()
}

#[test]
fn a_user_on_two_nodes_arrives_and_leaves_once() {
    let mut rosters = opened("r");
    let bob: Rc<str> = "bob".into();
    assert!(rosters.note("r", "b", "bob", true), "first place: arrives");
    assert!(!rosters.here("r", &bob, true), "already present on b");
    assert!(
        !rosters.note("r", "b", "bob", true),
        "a repeated note is idempotent"
    );
    assert_eq!(rosters.count("r"), Some(1));
    assert!(!rosters.note("r", "b", "bob", false), "still here");
    assert!(rosters.here("r", &bob, false), "gone everywhere: leaves");
    assert_eq!(rosters.count("r"), Some(0));
    assert!(!rosters.note("r", "b", "bob", false), "a leave for nobody");
}

#[test]
fn notes_for_rooms_not_mirrored_are_ignored() {
    let mut rosters = opened("r");
    assert!(!rosters.note("other", "b", "bob", true));
    assert_eq!(rosters.count("other"), None);
    assert_eq!(rosters.has("other", "bob"), None);
}

#[test]
fn a_dead_node_takes_only_its_own_users_away() {
    let mut rosters = opened("r");
    rosters.here("r", &Rc::from("alice"), true);
    rosters.note("r", "b", "alice", true);
    rosters.note("r", "b", "bob", true);
    rosters.note("r", "c", "carol", true);
    let gone = rosters.node_gone("b");
    assert_eq!(gone, vec![(Rc::from("r"), vec![Rc::from("bob")])]);
    assert_eq!(rosters.some("r", 10), Some(vec!["alice", "carol"]));
    assert!(rosters.node_gone("b").is_empty(), "a second time: nothing");
}

#[test]
fn a_snapshot_replaces_other_nodes_but_not_newer_notes() {
    let mut rosters = opened("r");
    rosters.here("r", &Rc::from("alice"), true);
    // Seen on the bus while the read was in flight: newer than the snapshot.
    assert!(rosters.note("r", "b", "dave", true));
    let crossings = rosters.apply(
        "r",
        &snapshot(&[("b", &["bob"]), ("c", &["carol", "alice"])]),
    );
    let mut arrived: Vec<&str> = crossings
        .iter()
        .map(|(u, a)| {
            assert!(*a);
            &**u
        })
        .collect();
    arrived.sort_unstable();
    assert_eq!(arrived, ["bob", "carol"], "alice was already here");
    assert_eq!(
        rosters.some("r", 10),
        Some(vec!["alice", "bob", "carol", "dave"])
    );
    // The next read is the truth again: dave is gone from b, c lost everyone.
    assert!(rosters.begin_read("r"));
    let crossings = rosters.apply("r", &snapshot(&[("b", &["bob"])]));
    let mut left: Vec<&str> = crossings.iter().map(|(u, _)| &**u).collect();
    left.sort_unstable();
    assert_eq!(left, ["carol", "dave"]);
    assert_eq!(rosters.count("r"), Some(2));
}

#[test]
fn a_node_declared_dead_during_a_read_stays_dead() {
    let mut rosters = opened("r");
    assert!(rosters.node_gone("b").is_empty());
    assert!(rosters.apply("r", &snapshot(&[("b", &["bob"])])).is_empty());
    assert_eq!(rosters.count("r"), Some(0));
}

#[test]
fn a_note_after_the_read_wins_over_it() {
    let mut rosters = opened("r");
    // bob left b after the read: the snapshot still lists him.
    rosters.note("r", "b", "bob", true);
    rosters.note("r", "b", "bob", false);
    assert!(rosters.apply("r", &snapshot(&[("b", &["bob"])])).is_empty());
    assert_eq!(rosters.has("r", "bob"), Some(false));
}

#[test]
fn remote_entries_are_bounded_and_released() {
    let mut rosters = opened("r");
    rosters.remote_entries = MAX_REMOTE_ENTRIES - 1;
    assert!(rosters.note("r", "b", "u1", true));
    assert!(!rosters.note("r", "b", "u2", true), "over the bound");
    assert_eq!(rosters.overflowed(), 1);
    rosters.close("r");
    assert_eq!(rosters.remote_entries, MAX_REMOTE_ENTRIES - 1);
    assert_eq!(rosters.count("r"), None);
}
