//! Ordering and restart rules with a fake container runner (DESIGN.md rule 2); the
//! end-to-end tests run the same rules with real runc.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::state::RuntimeRecord;

/// How a fake container behaves on each run.
#[derive(Clone, Copy, Debug)]
enum Run {
    /// Exits with this code after the given milliseconds.
    ExitAfter(i32, u64),
    /// Runs until signalled; exits 143 on its stop signal.
    UntilSignalled,
    /// Runs until SIGKILL (ignores its stop signal).
    IgnoresTerm,
    /// Fails to start.
    StartError,
    /// Takes this many milliseconds to start, then runs until signalled.
    SlowStart(u64),
}

#[derive(Default)]
struct FakeInner {
    script: HashMap<String, VecDeque<Run>>,
    running: HashMap<String, (Sender<Exit>, Run)>,
    events: Vec<(Instant, String)>,
    next_pid: i32,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<FakeInner>>);

impl Fake {
    fn script(&self, name: &str, runs: &[Run]) {
        self.0
            .lock()
            .unwrap()
            .script
            .insert(name.into(), runs.iter().copied().collect());
    }
    fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
    fn times(&self, event: &str) -> Vec<Instant> {
        self.0
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|(_, e)| e == event)
            .map(|(t, _)| *t)
            .collect()
    }
    fn log(&self, e: String) {
        self.0.lock().unwrap().events.push((Instant::now(), e));
    }
}

impl Containers for Fake {
    fn start(&self, c: &ContainerPlan, restart: u32) -> Result<Started, String> {
        let mut inner = self.0.lock().unwrap();
        let run = inner
            .script
            .get_mut(&c.name)
            .and_then(|q| {
                if q.len() > 1 {
                    q.pop_front()
                } else {
                    q.front().copied()
                }
            })
            .unwrap_or(Run::UntilSignalled);
        inner
            .events
            .push((Instant::now(), format!("start {} #{restart}", c.name)));
        if let Run::SlowStart(ms) = run {
            drop(inner);
            std::thread::sleep(Duration::from_millis(ms));
            inner = self.0.lock().unwrap();
        }
        if let Run::StartError = run {
            return Err(format!(
                "exec: \"nope\": executable file not found (for {})",
                c.name
            ));
        }
        let (tx, rx) = mpsc::channel();
        inner.next_pid += 1;
        let pid = 1000 + inner.next_pid;
        if let Run::ExitAfter(code, ms) = run {
            let tx = tx.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                let _ = tx.send(Exit { code, signal: None });
            });
        }
        inner.running.insert(c.name.clone(), (tx, run));
        Ok(Started { pid, exit: rx })
    }

    fn signal(&self, c: &ContainerPlan, signal: &str) -> Result<(), String> {
        let mut inner = self.0.lock().unwrap();
        inner
            .events
            .push((Instant::now(), format!("signal {} {signal}", c.name)));
        if let Some((tx, run)) = inner.running.get(&c.name) {
            let exit = match (signal, run) {
                ("SIGKILL", _) => Some(Exit {
                    code: 137,
                    signal: Some(9),
                }),
                (_, Run::IgnoresTerm) => None,
                _ => Some(Exit {
                    code: 143,
                    signal: Some(15),
                }),
            };
            if let Some(exit) = exit {
                let _ = tx.send(exit);
            }
        }
        Ok(())
    }

    fn remove(&self, c: &ContainerPlan) -> Result<(), String> {
        let mut inner = self.0.lock().unwrap();
        inner.running.remove(&c.name);
        inner
            .events
            .push((Instant::now(), format!("remove {}", c.name)));
        Ok(())
    }

    fn last_log_lines(&self, c: &ContainerPlan, _restart: u32) -> String {
        format!("log of {}\n", c.name)
    }

    fn infra_started(&self, pid: i32) -> Result<(), String> {
        self.log(format!("infra started {pid}"));
        Ok(())
    }
}

fn container(name: &str, kind: ContainerKind) -> ContainerPlan {
    ContainerPlan {
        id: format!("ns_p_{name}"),
        name: name.into(),
        kind,
        image: Some("img".into()),
        stop_signal: crate::model::Signal::TERM,
        bundle: format!("/b/{name}").into(),
        joins: vec![],
        sub_paths: vec![],
    }
}

fn plan(policy: &str, grace: i64, containers: Vec<ContainerPlan>) -> PodPlan {
    let mut infra = container("POD", ContainerKind::Infra);
    infra.id = "ns_p".into();
    PodPlan {
        version: 1,
        base: "/b".into(),
        setup: vec![],
        images: vec![],
        pod_id: "ns_p".into(),
        namespace: "ns".into(),
        name: "p".into(),
        uid: "u".into(),
        restart_policy: crate::model::RestartPolicy::parse(policy).unwrap(),
        termination_grace_period_seconds: grace as u64,
        infra,
        containers,
    }
}

fn lifecycle(plan: PodPlan, fake: &Fake) -> Arc<Lifecycle<Fake>> {
    let state = PodState {
        pod_id: plan.pod_id.clone(),
        namespace: plan.namespace.clone(),
        name: plan.name.clone(),
        uid: plan.uid.clone(),
        phase: PodPhase::Pending,
        message: None,
        created_at: now(),
        supervisor_pid: None,
        runtime: RuntimeRecord {
            program: "runc".into(),
            global_args: vec![],
            root: None,
        },
        restart_policy: plan.restart_policy,
        termination_grace_period_seconds: plan.termination_grace_period_seconds,
        log_dir: "/tmp".into(),
        bundle_dir: "/tmp".into(),
        keep_on_failure: false,
        containers: Lifecycle::<Fake>::initial_statuses(&plan),
    };
    let timing = Timing {
        backoff_initial: Duration::from_millis(40),
        backoff_max: Duration::from_millis(400),
    };
    Lifecycle::new(plan, fake.clone(), timing, state, Box::new(|_| {}))
}

/// Runs the pod on a thread; returns a handle and a receiver for "started".
fn spawn(l: &Arc<Lifecycle<Fake>>) -> (std::thread::JoinHandle<Outcome>, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel();
    let l = Arc::clone(l);
    (
        std::thread::spawn(move || l.run(move || tx.send(()).unwrap())),
        rx,
    )
}

fn position(events: &[String], e: &str) -> usize {
    events
        .iter()
        .position(|x| x == e)
        .unwrap_or_else(|| panic!("{e} not in {events:#?}"))
}

#[test]
fn containers_start_in_kubernetes_order_and_stop_in_reverse() {
    let fake = Fake::default();
    fake.script("init1", &[Run::ExitAfter(0, 5)]);
    fake.script("init2", &[Run::ExitAfter(0, 5)]);
    let l = lifecycle(
        plan(
            "Always",
            5,
            vec![
                container("init1", ContainerKind::Init),
                container("side1", ContainerKind::Sidecar),
                container("init2", ContainerKind::Init),
                container("side2", ContainerKind::Sidecar),
                container("app", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, started) = spawn(&l);
    started.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(l.state().phase, PodPhase::Running);
    l.request_stop();
    assert_eq!(handle.join().unwrap(), Outcome::Stopped);
    let ev = fake.events();
    let order = [
        "start POD #0",
        "infra started 1001",
        "start init1 #0",
        "remove init1",
        "start side1 #0",
        "start init2 #0",
        "start side2 #0",
        "start app #0",
        "signal app SIGTERM",
        "signal side2 SIGTERM",
        "signal side1 SIGTERM",
        "signal POD SIGTERM",
    ];
    let positions: Vec<usize> = order.iter().map(|e| position(&ev, e)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{ev:#?}");
}

#[test]
fn failed_init_container_under_never_fails_the_pod_and_starts_nothing_after_it() {
    let fake = Fake::default();
    fake.script("init", &[Run::ExitAfter(3, 5)]);
    let l = lifecycle(
        plan(
            "Never",
            5,
            vec![
                container("init", ContainerKind::Init),
                container("app", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, _started) = spawn(&l);
    let outcome = handle.join().unwrap();
    assert_eq!(
        outcome,
        Outcome::Failed(
            "init container \"init\" exited with code 3; its last log lines:\nlog of init".into()
        )
    );
    let ev = fake.events();
    assert!(!ev.iter().any(|e| e.starts_with("start app")), "{ev:#?}");
    assert!(ev.contains(&"signal POD SIGTERM".to_string()));
    assert_eq!(l.state().phase, PodPhase::Failed);
}

#[test]
fn failed_init_container_under_on_failure_is_retried_with_growing_restart_count() {
    let fake = Fake::default();
    fake.script(
        "init",
        &[
            Run::ExitAfter(1, 1),
            Run::ExitAfter(1, 1),
            Run::ExitAfter(0, 1),
        ],
    );
    let l = lifecycle(
        plan(
            "OnFailure",
            5,
            vec![
                container("init", ContainerKind::Init),
                container("app", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, started) = spawn(&l);
    started.recv_timeout(Duration::from_secs(5)).unwrap();
    let init = l.state().container("init").cloned().unwrap();
    assert_eq!(init.restart_count, 2);
    assert!(matches!(
        init.state,
        ContainerState::Terminated { exit_code: 0, .. }
    ));
    assert!(matches!(
        init.last_state,
        Some(ContainerState::Terminated { exit_code: 1, .. })
    ));
    l.request_stop();
    handle.join().unwrap();
    let ev = fake.events();
    for e in [
        "start init #0",
        "start init #1",
        "start init #2",
        "start app #0",
    ] {
        position(&ev, e);
    }
}

#[test]
fn crashing_app_under_always_restarts_with_growing_back_off() {
    let fake = Fake::default();
    fake.script("app", &[Run::ExitAfter(1, 1)]);
    let l = lifecycle(
        plan("Always", 5, vec![container("app", ContainerKind::App)]),
        &fake,
    );
    let (handle, started) = spawn(&l);
    started.recv_timeout(Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.times("remove app").len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    l.request_stop();
    handle.join().unwrap();
    let starts: Vec<Instant> = (0..5)
        .map(|i| fake.times(&format!("start app #{i}"))[0])
        .collect();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Back-off 0, 40, 80, 160 ms (plus the 1 ms run): each gap at least the back-off,
    // and growing.
    assert!(gaps[1] >= Duration::from_millis(40), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(80), "{gaps:?}");
    assert!(gaps[3] >= Duration::from_millis(160), "{gaps:?}");
    assert!(gaps[1] < gaps[2] && gaps[2] < gaps[3], "{gaps:?}");
    assert!(l.state().container("app").unwrap().restart_count >= 4);
}

#[test]
fn crashing_app_under_never_is_not_restarted_and_the_pod_fails() {
    let fake = Fake::default();
    fake.script("app", &[Run::ExitAfter(2, 5)]);
    let l = lifecycle(
        plan("Never", 5, vec![container("app", ContainerKind::App)]),
        &fake,
    );
    let (handle, _started) = spawn(&l);
    assert_eq!(handle.join().unwrap(), Outcome::Completed(PodPhase::Failed));
    assert_eq!(fake.times("start app #0").len(), 1);
    assert!(fake.times("start app #1").is_empty());
    assert_eq!(l.state().container("app").unwrap().restart_count, 0);
}

#[test]
fn successful_apps_under_on_failure_complete_the_pod_and_stop_sidecars_after_them() {
    let fake = Fake::default();
    fake.script("app", &[Run::ExitAfter(0, 30)]);
    let l = lifecycle(
        plan(
            "OnFailure",
            5,
            vec![
                container("side", ContainerKind::Sidecar),
                container("app", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, _started) = spawn(&l);
    assert_eq!(
        handle.join().unwrap(),
        Outcome::Completed(PodPhase::Succeeded)
    );
    let ev = fake.events();
    // The sidecar ran during the app and was stopped after it exited.
    assert!(position(&ev, "start side #0") < position(&ev, "start app #0"));
    assert!(position(&ev, "remove app") < position(&ev, "signal side SIGTERM"));
    assert!(!ev.contains(&"signal app SIGTERM".to_string()));
    assert_eq!(l.state().phase, PodPhase::Succeeded);
}

#[test]
fn sidecar_is_restarted_even_under_never() {
    let fake = Fake::default();
    fake.script("side", &[Run::ExitAfter(1, 5), Run::UntilSignalled]);
    let l = lifecycle(
        plan(
            "Never",
            5,
            vec![
                container("side", ContainerKind::Sidecar),
                container("app", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, started) = spawn(&l);
    started.recv_timeout(Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.times("start side #1").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    l.request_stop();
    handle.join().unwrap();
    assert_eq!(fake.times("start side #1").len(), 1);
}

#[test]
fn container_ignoring_its_stop_signal_is_killed_after_the_grace_period() {
    let fake = Fake::default();
    fake.script("stubborn", &[Run::IgnoresTerm]);
    fake.script("polite", &[Run::UntilSignalled]);
    let l = lifecycle(
        plan(
            "Always",
            1,
            vec![
                container("stubborn", ContainerKind::App),
                container("polite", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, started) = spawn(&l);
    started.recv_timeout(Duration::from_secs(5)).unwrap();
    let t0 = Instant::now();
    l.request_stop();
    handle.join().unwrap();
    let term = fake.times("signal stubborn SIGTERM")[0];
    let kill = fake.times("signal stubborn SIGKILL")[0];
    assert!(
        kill - term >= Duration::from_millis(950),
        "{:?}",
        kill - term
    );
    // The polite one stopped at once: removed right after its SIGTERM.
    let polite_removed = fake.times("remove polite")[0];
    assert!(
        polite_removed - t0 < Duration::from_millis(500),
        "{:?}",
        polite_removed - t0
    );
    assert!(fake.times("signal polite SIGKILL").is_empty());
    let stubborn = l.state().container("stubborn").cloned().unwrap();
    assert!(matches!(
        stubborn.state,
        ContainerState::Terminated { exit_code: 137, .. }
    ));
}

#[test]
fn app_that_cannot_start_fails_the_pod_and_stops_the_rest() {
    let fake = Fake::default();
    fake.script("bad", &[Run::StartError]);
    let l = lifecycle(
        plan(
            "Always",
            5,
            vec![
                container("good", ContainerKind::App),
                container("bad", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, _started) = spawn(&l);
    let outcome = handle.join().unwrap();
    match outcome {
        Outcome::Failed(msg) => assert!(msg.contains("container \"bad\": exec: \"nope\""), "{msg}"),
        other => panic!("{other:?}"),
    }
    let ev = fake.events();
    assert!(ev.contains(&"signal good SIGTERM".to_string()), "{ev:#?}");
    assert!(ev.contains(&"signal POD SIGTERM".to_string()), "{ev:#?}");
}

#[test]
fn infra_exit_stops_the_pod() {
    let fake = Fake::default();
    fake.script("POD", &[Run::ExitAfter(0, 100)]);
    let l = lifecycle(
        plan("Always", 5, vec![container("app", ContainerKind::App)]),
        &fake,
    );
    let (handle, _started) = spawn(&l);
    assert_eq!(handle.join().unwrap(), Outcome::Stopped);
    assert_eq!(
        l.state().message.as_deref(),
        Some("infra container exited with code 0")
    );
    assert!(fake.events().contains(&"signal app SIGTERM".to_string()));
}

#[test]
fn stop_during_an_init_container_stops_it_without_waiting_for_sigkill() {
    let fake = Fake::default();
    fake.script("init", &[Run::UntilSignalled]);
    let l = lifecycle(
        plan(
            "Always",
            5,
            vec![
                container("init", ContainerKind::Init),
                container("app", ContainerKind::App),
            ],
        ),
        &fake,
    );
    let (handle, _started) = spawn(&l);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.times("start init #0").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let t0 = Instant::now();
    l.request_stop();
    assert_eq!(handle.join().unwrap(), Outcome::Stopped);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(
        fake.times("signal init SIGKILL").is_empty(),
        "{:#?}",
        fake.events()
    );
    assert!(fake.times("start app #0").is_empty());
}

#[test]
fn a_restart_in_flight_when_the_pod_stops_is_stopped_too() {
    let fake = Fake::default();
    // Crashes at once; the immediate first restart takes 300 ms to start.
    fake.script("app", &[Run::ExitAfter(1, 1), Run::SlowStart(300)]);
    let l = lifecycle(
        plan("Always", 5, vec![container("app", ContainerKind::App)]),
        &fake,
    );
    let (handle, started) = spawn(&l);
    started.recv_timeout(Duration::from_secs(5)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.times("start app #1").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    l.request_stop();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(handle.join().unwrap()).unwrap());
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the pod did not finish stopping: the restarted run was left behind");
    assert_eq!(outcome, Outcome::Stopped);
    let ev = fake.events();
    assert!(
        position(&ev, "start app #1") < position(&ev, "signal app SIGTERM"),
        "{ev:#?}"
    );
}
