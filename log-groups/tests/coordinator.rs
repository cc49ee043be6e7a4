//! The coordinator's state machine, driven by hand with a manual clock:
//! joins into one generation, the leader's assignment handed out, session
//! expiry and rebalance deadlines, fenced commits, static membership,
//! leaving, deleting and the bounds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use log_groups::{
    Coordinator, GroupConfig, GroupError, GroupState, JoinGroup, Joined, MemberRef, Protocol,
    SyncGroup, Synced,
};

struct Harness {
    coordinator: Coordinator,
    now: Arc<Mutex<Instant>>,
}

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);
const DELAY: Duration = Duration::from_secs(3);

impl Harness {
    fn new() -> Harness {
        Harness::with(GroupConfig::default().with_initial_rebalance_delay(DELAY))
    }

    fn with(config: GroupConfig) -> Harness {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock = Arc::clone(&now);
        Harness {
            coordinator: Coordinator::with_clock(config, Arc::new(move || *clock.lock().unwrap())),
            now,
        }
    }

    fn advance(&self, by: Duration) {
        *self.now.lock().unwrap() += by;
        self.coordinator.tick();
    }

    fn join(
        &self,
        member_id: &str,
        instance: Option<&str>,
        protocols: &[&str],
    ) -> Receiver<Result<Joined, GroupError>> {
        let (tx, rx) = channel();
        self.coordinator.join(
            JoinGroup {
                member_id: member_id.into(),
                group_instance_id: instance.map(str::to_owned),
                protocols: protocols
                    .iter()
                    .map(|name| Protocol {
                        name: (*name).into(),
                        metadata: Bytes::from(format!("meta-{name}")),
                    })
                    .collect(),
                ..request("g", "c")
            },
            move |r| tx.send(r).unwrap(),
        );
        rx
    }

    fn sync(
        &self,
        joined: &Joined,
        assignments: &[(&str, &str)],
    ) -> Receiver<Result<Synced, GroupError>> {
        let (tx, rx) = channel();
        self.coordinator.sync(
            SyncGroup {
                member: member(joined),
                protocol_type: Some("consumer".into()),
                protocol: joined.protocol.clone(),
                assignments: assignments
                    .iter()
                    .map(|(m, a)| ((*m).to_owned(), Bytes::from((*a).to_owned())))
                    .collect(),
            },
            move |r| tx.send(r).unwrap(),
        );
        rx
    }

    fn state(&self) -> GroupState {
        self.coordinator.describe("g").unwrap().state
    }
}

/// A new dynamic member's join of `group`: protocol `range`, the test's
/// timeouts.
fn request(group: &str, client_id: &str) -> JoinGroup {
    JoinGroup {
        group_id: group.into(),
        member_id: String::new(),
        group_instance_id: None,
        client_id: client_id.into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![Protocol {
            name: "range".into(),
            metadata: Bytes::new(),
        }],
        require_known_member_id: false,
    }
}

fn member(joined: &Joined) -> MemberRef {
    MemberRef {
        group_id: "g".into(),
        generation: joined.generation,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
    }
}

fn ready<T>(rx: &Receiver<T>) -> T {
    rx.try_recv().expect("answered by now")
}

fn pending<T: std::fmt::Debug>(rx: &Receiver<T>) {
    if let Ok(answer) = rx.try_recv() {
        panic!("answered too early: {answer:?}");
    }
}

/// Three members into one stable generation; returns their joins, leader
/// first.
fn stable_three(h: &Harness) -> Vec<Joined> {
    let joins: Vec<_> = (0..3).map(|_| h.join("", None, &["range"])).collect();
    joins.iter().for_each(pending);
    h.advance(DELAY);
    let mut joined: Vec<Joined> = joins.iter().map(|rx| ready(rx).unwrap()).collect();
    joined.sort_by_key(|j| j.member_id != j.leader);
    let syncs: Vec<_> = joined[1..].iter().map(|j| h.sync(j, &[])).collect();
    syncs.iter().for_each(pending);
    let plan: Vec<(String, String)> = joined
        .iter()
        .enumerate()
        .map(|(i, j)| (j.member_id.clone(), format!("part-{i}")))
        .collect();
    let plan: Vec<(&str, &str)> = plan.iter().map(|(m, a)| (m.as_str(), a.as_str())).collect();
    let leader = h.sync(&joined[0], &plan);
    assert_eq!(ready(&leader).unwrap().assignment, Bytes::from("part-0"));
    for (i, rx) in syncs.iter().enumerate() {
        assert_eq!(
            ready(rx).unwrap().assignment,
            Bytes::from(format!("part-{}", i + 1))
        );
    }
    assert_eq!(h.state(), GroupState::Stable);
    joined
}

#[test]
fn members_started_together_join_one_generation_and_get_the_leaders_assignment() {
    let h = Harness::new();
    let joined = stable_three(&h);
    assert!(joined.iter().all(|j| j.generation == 1));
    assert!(joined.iter().all(|j| j.leader == joined[0].member_id));
    assert_eq!(joined[0].members.len(), 3, "the leader sees every member");
    assert!(joined[1..].iter().all(|j| j.members.is_empty()));
    assert_eq!(joined[0].members[0].metadata, Bytes::from("meta-range"));
    for j in &joined {
        assert_eq!(h.coordinator.heartbeat(&member(j)), Ok(()));
        assert!(j.member_id.starts_with("c-"), "{}", j.member_id);
    }
    let d = h.coordinator.describe("g").unwrap();
    assert_eq!(
        (d.protocol_type.as_str(), d.protocol.as_str()),
        ("consumer", "range")
    );
    assert_eq!(d.members.len(), 3);
}

#[test]
fn a_member_that_stops_heartbeating_is_removed_and_the_rest_rebalance() {
    let h = Harness::new();
    let joined = stable_three(&h);
    // Members 0 and 1 heartbeat; 2 has died.
    for _ in 0..3 {
        h.advance(SESSION / 4);
        for j in &joined[..2] {
            assert_eq!(h.coordinator.heartbeat(&member(j)), Ok(()));
        }
    }
    h.advance(SESSION / 2);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.coordinator.describe("g").unwrap().members.len(), 2);
    // The survivors learn from their heartbeat, and rejoin.
    for j in &joined[..2] {
        assert_eq!(
            h.coordinator.heartbeat(&member(j)),
            Err(GroupError::RebalanceInProgress)
        );
    }
    let first = h.join(&joined[0].member_id, None, &["range"]);
    pending(&first);
    let second = h.join(&joined[1].member_id, None, &["range"]);
    let (a, b) = (ready(&first).unwrap(), ready(&second).unwrap());
    assert_eq!((a.generation, b.generation), (2, 2));
    assert_eq!(a.leader, joined[0].member_id, "the leader stays the leader");
    // The dead member's commit is refused; so is a live one's of the old
    // generation.
    assert_eq!(
        h.coordinator.check_commit(&member(&joined[2])),
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        h.coordinator.check_commit(&member(&joined[0])),
        Err(GroupError::IllegalGeneration)
    );
    // Joined, not yet synced: no commits during the hand-out.
    assert_eq!(
        h.coordinator.check_commit(&member(&a)),
        Err(GroupError::RebalanceInProgress)
    );
    let leader = h.sync(&a, &[]);
    ready(&leader).unwrap();
    assert_eq!(h.coordinator.check_commit(&member(&a)), Ok(()));
}

#[test]
fn a_member_that_does_not_rejoin_by_the_rebalance_deadline_is_dropped() {
    let h = Harness::new();
    let joined = stable_three(&h);
    let first = h.join(&joined[0].member_id, None, &["range", "roundrobin"]);
    pending(&first);
    // Member 1 rejoins; member 2 keeps heartbeating but never rejoins.
    let second = h.join(&joined[1].member_id, None, &["range"]);
    pending(&second);
    for _ in 0..(REBALANCE.as_secs() / 5) {
        h.advance(Duration::from_secs(5));
        let _ = h.coordinator.heartbeat(&member(&joined[2]));
    }
    let (a, b) = (ready(&first).unwrap(), ready(&second).unwrap());
    assert_eq!(a.generation, 2);
    assert_eq!(b.protocol.as_deref(), Some("range"), "the one both support");
    assert_eq!(h.coordinator.describe("g").unwrap().members.len(), 2);
    assert_eq!(
        h.coordinator.heartbeat(&member(&joined[2])),
        Err(GroupError::UnknownMemberId)
    );
}

#[test]
fn a_new_member_id_is_handed_out_first_when_asked() {
    let h = Harness::with(GroupConfig::default().with_initial_rebalance_delay(Duration::ZERO));
    let (tx, rx) = channel();
    h.coordinator.join(
        JoinGroup {
            require_known_member_id: true,
            ..request("g", "app")
        },
        move |r| tx.send(r).unwrap(),
    );
    let Err(GroupError::MemberIdRequired { member_id }) = ready(&rx) else {
        panic!("no member id handed out");
    };
    assert!(member_id.starts_with("app-"));
    let joined = ready(&h.join(&member_id, None, &["range"])).unwrap();
    assert_eq!(
        (joined.generation, joined.member_id.as_str()),
        (1, member_id.as_str())
    );
    // An id handed out and never used expires with its session.
    let (tx, rx) = channel();
    h.coordinator.join(
        JoinGroup {
            require_known_member_id: true,
            ..request("h", "app")
        },
        move |r| tx.send(r).unwrap(),
    );
    assert!(matches!(
        ready(&rx),
        Err(GroupError::MemberIdRequired { .. })
    ));
    assert!(h.coordinator.describe("h").is_some());
    h.advance(SESSION);
    assert!(h.coordinator.describe("h").is_none(), "forgotten once idle");
}

#[test]
fn a_restarting_static_member_keeps_its_assignment_without_a_rebalance() {
    let h = Harness::new();
    let a = h.join("", Some("a"), &["range"]);
    let b = h.join("", Some("b"), &["range"]);
    h.advance(DELAY);
    let (a, b) = (ready(&a).unwrap(), ready(&b).unwrap());
    let (leader, follower) = if a.member_id == a.leader {
        (a, b)
    } else {
        (b, a)
    };
    let f = h.sync(&follower, &[]);
    let plan = [
        (leader.member_id.as_str(), "L"),
        (follower.member_id.as_str(), "F"),
    ];
    ready(&h.sync(&leader, &plan)).unwrap();
    assert_eq!(ready(&f).unwrap().assignment, Bytes::from("F"));
    let instance = h
        .coordinator
        .describe("g")
        .unwrap()
        .members
        .into_iter()
        .find(|m| m.member_id == follower.member_id)
        .unwrap()
        .group_instance_id
        .unwrap();
    // The follower's process restarts: a new member id, the same instance.
    let again = ready(&h.join("", Some(&instance), &["range"])).unwrap();
    assert_ne!(again.member_id, follower.member_id);
    assert_eq!(again.generation, follower.generation, "no rebalance");
    assert_eq!(h.state(), GroupState::Stable);
    let mut zombie = member(&follower);
    zombie.group_instance_id = Some(instance.clone());
    assert_eq!(
        h.coordinator.heartbeat(&zombie),
        Err(GroupError::FencedInstanceId)
    );
    assert_eq!(
        h.coordinator.check_commit(&zombie),
        Err(GroupError::FencedInstanceId)
    );
    let mut new = member(&again);
    new.group_instance_id = Some(instance);
    assert_eq!(
        ready(&h.sync(&again, &[])).unwrap().assignment,
        Bytes::from("F")
    );
    assert_eq!(h.coordinator.heartbeat(&new), Ok(()));
}

#[test]
fn leaving_rebalances_and_the_last_one_out_empties_the_group() {
    let h = Harness::new();
    let joined = stable_three(&h);
    let results = h.coordinator.leave(
        "g",
        &[(joined[2].member_id.clone(), None), ("nobody".into(), None)],
    );
    assert_eq!(results, vec![Ok(()), Err(GroupError::UnknownMemberId)]);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    assert_eq!(h.coordinator.delete("g"), Err(GroupError::NonEmptyGroup));
    for j in &joined[..2] {
        assert_eq!(
            h.coordinator.leave("g", &[(j.member_id.clone(), None)]),
            vec![Ok(())]
        );
    }
    assert_eq!(h.state(), GroupState::Empty);
    // An empty group takes commits without a generation (manual
    // assignment), and a stale member's not at all.
    let simple = MemberRef {
        group_id: "g".into(),
        generation: -1,
        member_id: String::new(),
        group_instance_id: None,
    };
    assert_eq!(h.coordinator.check_commit(&simple), Ok(()));
    assert_eq!(
        h.coordinator.check_commit(&member(&joined[0])),
        Err(GroupError::UnknownMemberId)
    );
    h.advance(Duration::from_millis(1));
    assert!(h.coordinator.describe("g").is_none());
    assert_eq!(h.coordinator.check_commit(&simple), Ok(()));
    assert_eq!(
        h.coordinator.check_commit(&member(&joined[0])),
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(h.coordinator.delete("g"), Ok(false));
}

#[test]
fn a_rebalance_during_the_hand_out_fails_the_waiting_syncs() {
    let h = Harness::new();
    let a = h.join("", None, &["range"]);
    let b = h.join("", None, &["range"]);
    h.advance(DELAY);
    let (a, b) = (ready(&a).unwrap(), ready(&b).unwrap());
    let (leader, follower) = if a.member_id == a.leader {
        (a, b)
    } else {
        (b, a)
    };
    let waiting = h.sync(&follower, &[]);
    pending(&waiting);
    // A third member arrives before the leader's assignment.
    let third = h.join("", None, &["range"]);
    assert_eq!(ready(&waiting), Err(GroupError::RebalanceInProgress));
    assert_eq!(
        ready(&h.sync(&leader, &[])),
        Err(GroupError::RebalanceInProgress)
    );
    pending(&third);
}

#[test]
fn bad_joins_are_refused_with_the_reason() {
    let h = Harness::with(
        GroupConfig::default()
            .with_max_members(2)
            .with_max_groups(2)
            .with_initial_rebalance_delay(Duration::ZERO),
    );
    let joined = ready(&h.join("", None, &["range"])).unwrap();
    // Inconsistent protocols.
    assert_eq!(
        ready(&h.join("", None, &["sticky"])),
        Err(GroupError::InconsistentGroupProtocol)
    );
    assert_eq!(
        ready(&h.join("", None, &[])),
        Err(GroupError::InconsistentGroupProtocol)
    );
    // Unknown member.
    assert_eq!(
        ready(&h.join("ghost", None, &["range"])),
        Err(GroupError::UnknownMemberId)
    );
    // Full.
    let _second = h.join("", None, &["range"]);
    assert_eq!(
        ready(&h.join("", None, &["range"])),
        Err(GroupError::GroupMaxSizeReached)
    );
    // Session timeout out of bounds, empty group id, too many groups.
    let (tx, rx) = channel();
    let bad = JoinGroup {
        session_timeout: Duration::from_secs(1),
        ..request("other", "c")
    };
    let tx2 = tx.clone();
    h.coordinator
        .join(bad.clone(), move |r| tx2.send(r.map(|_| ())).unwrap());
    assert_eq!(ready(&rx), Err(GroupError::InvalidSessionTimeout));
    let tx2 = tx.clone();
    h.coordinator.join(
        JoinGroup {
            group_id: String::new(),
            session_timeout: SESSION,
            ..bad.clone()
        },
        move |r| tx2.send(r.map(|_| ())).unwrap(),
    );
    assert_eq!(ready(&rx), Err(GroupError::InvalidGroupId));
    for (group, want) in [
        ("g2", Ok(())),
        ("g3", Err(GroupError::CoordinatorNotAvailable)),
    ] {
        let tx2 = tx.clone();
        h.coordinator.join(
            JoinGroup {
                group_id: group.into(),
                session_timeout: SESSION,
                ..bad.clone()
            },
            move |r| tx2.send(r.map(|_| ())).unwrap(),
        );
        assert_eq!(ready(&rx), want, "{group}");
    }
    assert_eq!(
        h.coordinator.heartbeat(&member(&joined)),
        Err(GroupError::RebalanceInProgress)
    );
}
