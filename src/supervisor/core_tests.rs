//! The lifecycle rules, run in a simulation: virtual time, containers that behave
//! as scripted, and the core's commands carried out the way the event loop does.
//! No test reads a clock or sleeps (the end-to-end tests run the same rules with
//! real runc).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::model::{
    ContainerKind, Hook, HookKind, Hooks, Probe, ProbeAction, ProbeKind, Probes, RestartPolicy,
    Signal, TerminationMessagePolicy,
};
use crate::run_plan::RunPlan;
use crate::state::{ContainerStatus, PodPhase, PodState, RuntimeRecord};

/// How a scripted container behaves on one run.
#[derive(Clone, Copy, Debug)]
enum Run {
    /// Exits with this code after this many milliseconds.
    ExitAfter(i32, u64),
    /// Runs until signalled; exits 128 + the signal on its stop signal.
    UntilSignalled,
    /// Ignores its stop signal; SIGKILL ends it.
    IgnoresTerm,
    /// Ignores even SIGKILL (stuck in the kernel).
    Unkillable,
    /// The runtime fails to start it.
    StartError,
    /// Its configuration cannot be made (an env file it reads is missing).
    ConfigError,
    /// The runtime takes this many milliseconds to start it; then it runs until
    /// signalled.
    SlowStart(u64),
    /// Takes this many milliseconds to start, then ignores its stop signal.
    SlowStartIgnoresTerm(u64),
    /// Takes this many milliseconds to start, then ignores even SIGKILL.
    SlowStartUnkillable(u64),
}

struct NoLogs;
impl Logs for NoLogs {
    fn last_lines(&self, _: Ctr, _: u32, _: usize) -> String {
        "the last words\n".into()
    }
    fn termination_message(&self, _: Ctr) -> String {
        String::new()
    }
}

struct Sim {
    core: Core,
    t0: Instant,
    now: Instant,
    seq: u64,
    /// Pending inputs by when they happen; the run number keeps a late exit of an
    /// earlier run from reaching a later one.
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    pending: HashMap<usize, (Input, Option<(Ctr, u64)>)>,
    script: HashMap<String, VecDeque<Run>>,
    current: HashMap<Ctr, (Run, u64)>,
    runs: HashMap<Ctr, u64>,
    names: Vec<String>,
    /// (milliseconds since the start, what happened)
    trace: Vec<(u64, String)>,
    outcome: Option<Outcome>,
    next_id: usize,
    /// Each probe's scripted results (ok, how long it takes in ms); the last
    /// repeats. Unscripted probes succeed at once.
    probe_script: HashMap<(String, ProbeKind), VecDeque<(bool, u64)>>,
    /// Each hook's result and duration (ms); unscripted hooks succeed at once.
    hook_script: HashMap<(String, HookKind), (bool, u64)>,
    /// The one sized volume's usage from each time on (0 before the first).
    volume_script: Vec<(Duration, VolumeUsage)>,
}

fn plan(policy: RestartPolicy, grace: u64, containers: &[(&str, ContainerKind)]) -> RunPlan {
    crate::run_plan::fixture(policy, grace, containers)
}

fn state(plan: &RunPlan, keep: bool) -> PodState {
    PodState {
        pod_id: plan.pod_id.clone(),
        namespace: "ns".into(),
        name: "p".into(),
        uid: "u".into(),
        phase: PodPhase::Pending,
        message: None,
        reason: None,
        qos_class: None,
        cgroup: None,
        user_namespace: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        supervisor_pid: None,
        runtime: RuntimeRecord {
            program: "runc".into(),
            global_args: vec![],
            root: None,
        },
        restart_policy: plan.restart_policy,
        termination_grace_period_seconds: plan.termination_grace_period_seconds,
        log_dir: "/l".into(),
        bundle_dir: "/b".into(),
        keep_on_failure: keep,
        containers: plan
            .all()
            .map(|c| ContainerStatus {
                name: c.name.clone(),
                id: c.id.clone(),
                kind: c.kind,
                image: c.image.clone(),
                state: crate::state::ContainerState::Waiting {
                    reason: "ContainerCreating".into(),
                },
                last_state: None,
                restart_count: 0,
                ready: false,
                started: None,
                stop_signal: c.stop_signal,
                probes: Vec::new(),
                user: None,
                resources: None,
            })
            .collect(),
        host_ip: None,
        pod_ip: None,
        pod_ips: Vec::new(),
        conditions: Vec::new(),
        events: Vec::new(),
        origin: Default::default(),
    }
}

use ContainerKind::{App, Init, Sidecar};
use RestartPolicy::{Always, Never, OnFailure};

impl Sim {
    fn new(policy: RestartPolicy, grace: u64, containers: &[(&str, ContainerKind)]) -> Sim {
        Sim::with(policy, grace, containers, Timing::default(), false)
    }

    fn with(
        policy: RestartPolicy,
        grace: u64,
        containers: &[(&str, ContainerKind)],
        timing: Timing,
        keep: bool,
    ) -> Sim {
        Sim::with_plan(plan(policy, grace, containers), timing, keep)
    }

    /// A pod whose containers have the given probes.
    fn probed(
        policy: RestartPolicy,
        grace: u64,
        containers: &[(&str, ContainerKind)],
        probes: &[(&str, Probes)],
    ) -> Sim {
        let mut plan = plan(policy, grace, containers);
        for (name, p) in probes {
            let c = plan
                .containers
                .iter_mut()
                .find(|c| c.name == *name)
                .unwrap();
            c.probes = p.clone();
        }
        Sim::with_plan(plan, Timing::default(), false)
    }

    fn with_plan(plan: RunPlan, timing: Timing, keep: bool) -> Sim {
        let names = plan.all().map(|c| c.name.clone()).collect();
        let t0 = Instant::now();
        Sim {
            core: Core::new(&plan, state(&plan, keep), timing),
            t0,
            now: t0,
            seq: 0,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            script: HashMap::new(),
            current: HashMap::new(),
            runs: HashMap::new(),
            names,
            trace: Vec::new(),
            outcome: None,
            next_id: 0,
            probe_script: HashMap::new(),
            hook_script: HashMap::new(),
            volume_script: Vec::new(),
        }
    }

    /// A pod whose containers have the given hooks.
    fn hooked(
        policy: RestartPolicy,
        grace: u64,
        containers: &[(&str, ContainerKind)],
        hooks: &[(&str, Hooks)],
    ) -> Sim {
        let mut plan = plan(policy, grace, containers);
        for (name, h) in hooks {
            let c = plan
                .containers
                .iter_mut()
                .find(|c| c.name == *name)
                .unwrap();
            c.hooks = h.clone();
        }
        Sim::with_plan(plan, Timing::default(), false)
    }

    fn script_hook(mut self, name: &str, hook: HookKind, ok: bool, ms: u64) -> Sim {
        self.hook_script.insert((name.into(), hook), (ok, ms));
        self
    }

    fn script_probe(mut self, name: &str, kind: ProbeKind, results: &[(bool, u64)]) -> Sim {
        self.probe_script
            .insert((name.into(), kind), results.iter().copied().collect());
        self
    }

    fn script(mut self, name: &str, runs: &[Run]) -> Sim {
        self.script
            .insert(name.into(), runs.iter().copied().collect());
        self
    }

    fn ms(&self) -> u64 {
        (self.now - self.t0).as_millis() as u64
    }

    fn at(&self) -> Now {
        Now {
            mono: self.now,
            wall: SystemTime::UNIX_EPOCH + (self.now - self.t0),
        }
    }

    fn log(&mut self, what: String) {
        let ms = self.ms();
        self.trace.push((ms, what));
    }

    fn schedule(&mut self, after: Duration, input: Input, run: Option<(Ctr, u64)>) {
        let id = self.next_id;
        self.next_id += 1;
        self.seq += 1;
        self.pending.insert(id, (input, run));
        self.queue.push(Reverse((self.now + after, self.seq, id)));
    }

    fn name(&self, ctr: Ctr) -> String {
        self.names[ctr].clone()
    }

    fn exec(&mut self, commands: Vec<Command>) {
        for c in commands {
            match c {
                Command::Start { ctr, restart } => {
                    let name = self.name(ctr);
                    self.log(format!("start {name} #{restart}"));
                    let run = match self.script.get_mut(&name) {
                        Some(q) if q.len() > 1 => q.pop_front().unwrap(),
                        Some(q) => *q.front().unwrap(),
                        None => Run::UntilSignalled,
                    };
                    let n = self.runs.entry(ctr).or_default();
                    *n += 1;
                    let n = *n;
                    let pid = 1000 + ctr as i32 * 100 + n as i32;
                    match run {
                        Run::StartError => self.schedule(
                            Duration::ZERO,
                            Input::Started {
                                ctr,
                                result: Err(format!("exec: \"nope\": not found ({name})").into()),
                            },
                            None,
                        ),
                        Run::ConfigError => self.schedule(
                            Duration::ZERO,
                            Input::Started {
                                ctr,
                                result: Err(StartError::config(format!(
                                    "env V: env file \"v.env\" does not exist ({name})"
                                ))),
                            },
                            None,
                        ),
                        Run::SlowStart(ms)
                        | Run::SlowStartIgnoresTerm(ms)
                        | Run::SlowStartUnkillable(ms) => {
                            self.current.insert(ctr, (run, n));
                            self.schedule(
                                Duration::from_millis(ms),
                                Input::Started {
                                    ctr,
                                    result: Ok(pid),
                                },
                                None,
                            );
                        }
                        _ => {
                            self.current.insert(ctr, (run, n));
                            self.schedule(
                                Duration::ZERO,
                                Input::Started {
                                    ctr,
                                    result: Ok(pid),
                                },
                                None,
                            );
                            if let Run::ExitAfter(code, ms) = run {
                                self.schedule(
                                    Duration::from_millis(ms),
                                    Input::Exited {
                                        ctr,
                                        exit: Exit {
                                            code,
                                            signal: None,
                                            oom_killed: false,
                                        },
                                    },
                                    Some((ctr, n)),
                                );
                            }
                        }
                    }
                }
                Command::PrepareInfra { .. } => {
                    self.schedule(Duration::ZERO, Input::InfraReady(Ok(Vec::new())), None)
                }
                Command::Signal { ctr, signal, all } => {
                    let name = self.name(ctr);
                    self.log(format!(
                        "signal {name} {}{}",
                        signal.name(),
                        if all { " all" } else { "" }
                    ));
                    if let Some((run, n)) = self.current.get(&ctr).copied() {
                        let dies = match run {
                            Run::Unkillable | Run::SlowStartUnkillable(_) => false,
                            Run::IgnoresTerm | Run::SlowStartIgnoresTerm(_) => {
                                signal == Signal::KILL
                            }
                            _ => true,
                        };
                        if dies {
                            let code = 128 + signal.number();
                            self.schedule(
                                Duration::ZERO,
                                Input::Exited {
                                    ctr,
                                    exit: Exit {
                                        code,
                                        signal: Some(signal.number()),
                                        oom_killed: false,
                                    },
                                },
                                Some((ctr, n)),
                            );
                        }
                    }
                }
                Command::Remove { ctr } => {
                    let name = self.name(ctr);
                    self.log(format!("remove {name}"));
                    self.current.remove(&ctr);
                }
                Command::Arm { at, timer } => {
                    let after = at.saturating_duration_since(self.now);
                    self.schedule(after, Input::Timer(timer), None);
                }
                Command::MeasureVolumes => {
                    let at = self.now - self.t0;
                    self.log("measure volumes".into());
                    let usage = self
                        .volume_script
                        .iter()
                        .rev()
                        .find(|(from, _)| *from <= at)
                        .map_or(VolumeUsage::Bytes(0), |(_, u)| u.clone());
                    self.schedule(Duration::ZERO, Input::VolumesMeasured(vec![usage]), None);
                }
                Command::Probe(run) => {
                    let ProbeRun { ctr, kind, .. } = run;
                    let name = self.name(ctr);
                    self.log(format!("probe {name} {}", kind.title()));
                    let (ok, ms) = match self.probe_script.get_mut(&(name.clone(), kind)) {
                        Some(q) if q.len() > 1 => q.pop_front().unwrap(),
                        Some(q) => *q.front().unwrap(),
                        None => (true, 0),
                    };
                    let result = if ok {
                        Ok(String::new())
                    } else {
                        Err(format!("{name} is unwell"))
                    };
                    self.schedule(
                        Duration::from_millis(ms),
                        Input::Probed { probe: run, result },
                        None,
                    );
                }
                Command::Hook {
                    ctr,
                    hook,
                    generation,
                } => {
                    let name = self.name(ctr);
                    self.log(format!("hook {name} {}", hook.title()));
                    let (ok, ms) = self
                        .hook_script
                        .get(&(name.clone(), hook))
                        .copied()
                        .unwrap_or((true, 0));
                    let result = if ok {
                        Ok(())
                    } else {
                        Err(format!("{name}'s hook failed"))
                    };
                    self.schedule(
                        Duration::from_millis(ms),
                        Input::Hooked {
                            ctr,
                            hook,
                            generation,
                            result,
                        },
                        None,
                    );
                }
                Command::Publish => {}
                Command::ReportStarted => self.log("started".into()),
                Command::Finish(o) => {
                    self.log(format!("finish {o:?}"));
                    self.outcome = Some(o);
                }
            }
        }
    }

    fn begin(mut self) -> Sim {
        let at = self.at();
        let c = self.core.start(at);
        self.exec(c);
        self
    }

    /// Delivers inputs in time order until the pod is done or `limit` has passed.
    fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        while let Some(Reverse((at, _, id))) = self.queue.peek().copied() {
            if at > end || self.outcome.is_some() {
                break;
            }
            self.queue.pop();
            self.now = at;
            let (input, run) = self.pending.remove(&id).unwrap();
            // An exit of a run that is no longer the current one never reaches it.
            if let Some((ctr, n)) = run
                && self.current.get(&ctr).map(|(_, m)| *m) != Some(n)
            {
                continue;
            }
            let at = self.at();
            let c = self.core.handle(input, at, &NoLogs);
            self.exec(c);
        }
        if self.outcome.is_none() && self.now < end {
            self.now = end;
        }
    }

    fn stop(&mut self) {
        self.stop_with(None);
    }

    fn stop_with(&mut self, grace: Option<Duration>) {
        let at = self.at();
        let c = self
            .core
            .handle(Input::StopRequested { grace }, at, &NoLogs);
        self.exec(c);
    }

    /// `podshim resize` told the supervisor: these resources, these restarts.
    fn resized(
        &mut self,
        resources: Vec<Option<crate::run_plan::PlanResources>>,
        restart: Vec<Ctr>,
    ) {
        let at = self.at();
        let c = self
            .core
            .handle(Input::Resized { resources, restart }, at, &NoLogs);
        self.exec(c);
    }

    fn exit_now(&mut self, name: &str, code: i32) {
        self.exit_with(
            name,
            Exit {
                code,
                signal: None,
                oom_killed: false,
            },
        );
    }

    fn exit_with(&mut self, name: &str, exit: Exit) {
        let ctr = self.names.iter().position(|n| n == name).unwrap();
        let at = self.at();
        let c = self.core.handle(Input::Exited { ctr, exit }, at, &NoLogs);
        self.exec(c);
    }

    fn events(&self) -> Vec<&str> {
        self.trace.iter().map(|(_, e)| e.as_str()).collect()
    }

    fn times(&self, event: &str) -> Vec<u64> {
        self.trace
            .iter()
            .filter(|(_, e)| e == event)
            .map(|(t, _)| *t)
            .collect()
    }

    fn starts_of(&self, name: &str) -> Vec<u64> {
        self.trace
            .iter()
            .filter(|(_, e)| e.starts_with(&format!("start {name} #")))
            .map(|(t, _)| *t)
            .collect()
    }

    fn status(&self, name: &str) -> &ContainerStatus {
        self.core.state().container(name).unwrap()
    }
}

const SEC: u64 = 1000;

#[test]
fn containers_start_in_kubernetes_order_and_stop_in_reverse() {
    let mut sim = Sim::new(
        Always,
        30,
        &[
            ("i1", Init),
            ("s", Sidecar),
            ("i2", Init),
            ("a", App),
            ("b", App),
        ],
    )
    .script("i1", &[Run::ExitAfter(0, 10)])
    .script("i2", &[Run::ExitAfter(0, 10)])
    .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.events(),
        [
            "start POD #0",
            "start i1 #0",
            "remove i1",
            "start s #0",
            "start i2 #0",
            "remove i2",
            "start a #0",
            "start b #0",
            "started",
            // Apps together, then sidecars and inits in reverse, then the infra.
            "signal a SIGTERM",
            "signal b SIGTERM",
            "remove a",
            "remove b",
            "signal s SIGTERM",
            "remove s",
            "signal POD SIGTERM",
            "remove POD",
            "finish Stopped",
        ]
    );
    assert_eq!(sim.core.state().phase, PodPhase::Terminating);
}

#[test]
fn a_failed_init_container_under_never_fails_the_pod_and_starts_nothing_after_it() {
    let mut sim = Sim::new(Never, 30, &[("i1", Init), ("a", App)])
        .script("i1", &[Run::ExitAfter(3, 5)])
        .begin();
    sim.run_for(Duration::from_secs(5));
    assert!(sim.starts_of("a").is_empty());
    assert!(!sim.events().contains(&"started"));
    assert_eq!(
        sim.outcome,
        Some(Outcome::Failed(
            "init container \"i1\" exited with code 3; its last log lines:\nthe last words".into()
        ))
    );
    assert_eq!(sim.core.state().phase, PodPhase::Failed);
}

#[test]
fn a_failed_init_container_under_on_failure_is_retried_with_the_kubelets_back_off() {
    let mut sim = Sim::new(OnFailure, 30, &[("i1", Init), ("a", App)])
        .script(
            "i1",
            &[
                Run::ExitAfter(1, 0),
                Run::ExitAfter(1, 0),
                Run::ExitAfter(1, 0),
                Run::ExitAfter(0, 0),
            ],
        )
        .begin();
    sim.run_for(Duration::from_secs(120));
    // The kubelet restarts the first crash at once, then waits 10 s, then 20 s,
    // each counted from the crash.
    assert_eq!(sim.starts_of("i1"), [0, 0, 10 * SEC, 30 * SEC]);
    assert_eq!(sim.status("i1").restart_count, 3);
    assert_eq!(sim.starts_of("a"), [30 * SEC]);
    assert!(sim.events().contains(&"started"));
}

#[test]
fn a_crashing_app_under_always_backs_off_doubling_up_to_five_minutes() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script("a", &[Run::ExitAfter(1, 0)])
        .begin();
    sim.run_for(Duration::from_secs(1500));
    let starts = sim.starts_of("a");
    let gaps: Vec<u64> = starts.windows(2).map(|w| (w[1] - w[0]) / SEC).collect();
    assert_eq!(gaps[..8], [0, 10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(
        sim.status("a").state,
        crate::state::ContainerState::Waiting {
            reason: "CrashLoopBackOff".into()
        }
    );
    assert!(sim.status("a").restart_count >= 7);
}

#[test]
fn the_back_off_starts_over_after_ten_minutes_of_running() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script(
            "a",
            &[
                Run::ExitAfter(1, 0),
                Run::ExitAfter(1, 0),
                Run::ExitAfter(1, 11 * 60 * SEC),
                Run::ExitAfter(1, 0),
                Run::ExitAfter(1, 0),
            ],
        )
        .begin();
    sim.run_for(Duration::from_secs(1000));
    let starts = sim.starts_of("a");
    // At once, then 10 s; then it ran 11 minutes (more than twice the maximum):
    // the back-off starts over, and the restart is at once again.
    assert_eq!(starts[1] - starts[0], 0);
    assert_eq!(starts[2] - starts[1], 10 * SEC);
    assert_eq!(starts[3] - starts[2], 11 * 60 * SEC);
    assert_eq!(starts[4] - starts[3], 10 * SEC);
}

#[test]
fn a_crashing_app_under_never_is_not_restarted_and_the_pod_fails_after_stopping_sidecars() {
    let mut sim = Sim::new(Never, 30, &[("s", Sidecar), ("a", App)])
        .script("a", &[Run::ExitAfter(2, 50)])
        .begin();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.starts_of("a").len(), 1);
    assert_eq!(sim.outcome, Some(Outcome::Completed(PodPhase::Failed)));
    let ev = sim.events();
    let pos = |e: &str| ev.iter().position(|x| *x == e).unwrap();
    assert!(pos("remove a") < pos("signal s SIGTERM"));
    assert!(pos("remove s") < pos("signal POD SIGTERM"));
    assert_eq!(sim.core.state().phase, PodPhase::Failed);
}

#[test]
fn successful_apps_under_on_failure_complete_the_pod_and_the_sidecars_stop_after_them() {
    let mut sim = Sim::new(OnFailure, 30, &[("s", Sidecar), ("a", App), ("b", App)])
        .script("a", &[Run::ExitAfter(0, 100)])
        .script("b", &[Run::ExitAfter(0, 200)])
        .begin();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.outcome, Some(Outcome::Completed(PodPhase::Succeeded)));
    assert_eq!(sim.core.state().phase, PodPhase::Succeeded);
    assert_eq!(sim.times("signal s SIGTERM"), [200]);
    assert_eq!(sim.starts_of("a").len(), 1);
}

#[test]
fn a_sidecar_is_restarted_even_under_never() {
    let mut sim = Sim::new(Never, 30, &[("s", Sidecar), ("a", App)])
        .script(
            "s",
            &[
                Run::ExitAfter(1, 100),
                Run::ExitAfter(1, 100),
                Run::UntilSignalled,
            ],
        )
        .begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.starts_of("s"), [0, 100, 200 + 10 * SEC]);
    assert_eq!(sim.status("s").restart_count, 2);
    assert!(sim.outcome.is_none());
}

#[test]
fn a_container_ignoring_its_stop_signal_is_killed_after_the_grace_period() {
    let mut sim = Sim::new(Always, 5, &[("a", App), ("b", App)])
        .script("a", &[Run::IgnoresTerm])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.times("signal a SIGTERM"), [1000]);
    assert_eq!(sim.times("signal a SIGKILL all"), [6000]);
    assert_eq!(sim.times("remove a"), [6000]);
    // The other app container stopped at once.
    assert_eq!(sim.times("remove b"), [1000]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_container_that_survives_sigkill_is_deleted_anyway() {
    let mut sim = Sim::new(Always, 3, &[("a", App)])
        .script("a", &[Run::Unkillable])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.times("signal a SIGKILL all"), [4000]);
    // AFTER_KILL later it is deleted by force and the teardown goes on.
    assert_eq!(sim.times("remove a"), [6000]);
    assert_eq!(sim.times("signal POD SIGTERM"), [6000]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn the_grace_period_is_one_budget_for_the_pod_and_each_later_step_gets_at_least_two_seconds() {
    let mut sim = Sim::new(Always, 10, &[("s", Sidecar), ("a", App)])
        .script("a", &[Run::IgnoresTerm])
        .script("s", &[Run::IgnoresTerm])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.times("signal a SIGKILL all"), [11 * SEC]);
    // The apps spent the budget: the sidecar gets the minimum, not another 10 s.
    assert_eq!(sim.times("signal s SIGTERM"), [11 * SEC]);
    assert_eq!(sim.times("signal s SIGKILL all"), [13 * SEC]);
}

#[test]
fn an_app_that_cannot_start_fails_the_pod_and_the_rest_is_stopped() {
    let mut sim = Sim::new(Always, 30, &[("s", Sidecar), ("a", App), ("b", App)])
        .script("b", &[Run::StartError])
        .begin();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.outcome,
        Some(Outcome::Failed(
            "container \"b\": exec: \"nope\": not found (b)".into()
        ))
    );
    assert!(!sim.events().contains(&"started"));
    for e in ["signal a SIGTERM", "signal s SIGTERM", "signal POD SIGTERM"] {
        assert!(sim.events().contains(&e), "{e}: {:?}", sim.events());
    }
    assert_eq!(
        sim.status("b").state,
        crate::state::ContainerState::Waiting {
            reason: "RunContainerError".into()
        }
    );
}

#[test]
fn the_infra_exiting_stops_the_pod() {
    let mut sim = Sim::new(Always, 30, &[("a", App)]).begin();
    sim.run_for(Duration::from_secs(1));
    sim.exit_now("POD", 137);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(
        sim.outcome,
        Some(Outcome::Failed(
            "infra container exited with code 137".into()
        ))
    );
    assert!(sim.events().contains(&"signal a SIGTERM"));
    // Nothing is started again once the infra is gone.
    assert_eq!(sim.starts_of("a").len(), 1);
}

#[test]
fn a_stop_during_an_init_container_stops_it_without_waiting_for_sigkill() {
    let mut sim = Sim::new(Always, 30, &[("i1", Init), ("a", App)])
        .script("i1", &[Run::UntilSignalled])
        .begin();
    sim.run_for(Duration::from_secs(2));
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.times("signal i1 SIGTERM"), [2000]);
    assert_eq!(sim.times("remove i1"), [2000]);
    assert_eq!(sim.times("remove POD"), [2000]);
    assert!(sim.starts_of("a").is_empty());
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_restart_in_flight_when_the_pod_stops_is_stopped_too() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script("a", &[Run::ExitAfter(1, 0), Run::SlowStart(3000)])
        .begin();
    // The restart begins at once and takes 3 s; the stop comes in between.
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.starts_of("a"), [0, 0]);
    assert_eq!(sim.times("signal a SIGTERM"), [3 * SEC]);
    assert_eq!(sim.times("signal POD SIGTERM"), [3 * SEC]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_restart_waiting_out_its_back_off_when_the_pod_stops_never_happens() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script("a", &[Run::ExitAfter(1, 0)])
        .begin();
    // Crashed twice: the second restart waits 10 s, and the stop comes first.
    sim.run_for(Duration::from_secs(5));
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.starts_of("a"), [0, 0]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn app_containers_start_at_most_start_workers_at_a_time() {
    let apps: Vec<(String, ContainerKind)> = (0..6).map(|i| (format!("a{i}"), App)).collect();
    let apps: Vec<(&str, ContainerKind)> = apps.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    let timing = Timing {
        start_workers: 2,
        ..Timing::default()
    };
    let mut sim = Sim::with(Always, 30, &apps, timing, false);
    for (name, _) in &apps {
        sim = sim.script(name, &[Run::SlowStart(100)]);
    }
    let mut sim = sim.begin();
    sim.run_for(Duration::from_secs(5));
    let mut firsts: Vec<u64> = (0..6).map(|i| sim.starts_of(&format!("a{i}"))[0]).collect();
    firsts.sort();
    assert_eq!(firsts, [0, 0, 100, 100, 200, 200]);
    assert_eq!(sim.times("started"), [300]);
}

#[test]
fn up_keep_leaves_a_pod_that_failed_to_start_as_it_is() {
    let sim = Sim::with(
        Never,
        30,
        &[("s", Sidecar), ("i1", Init)],
        Timing::default(),
        true,
    )
    .script("i1", &[Run::ExitAfter(1, 0)]);
    let mut sim = sim.begin();
    sim.run_for(Duration::from_secs(5));
    assert!(matches!(sim.outcome, Some(Outcome::Failed(_))));
    assert!(!sim.events().iter().any(|e| e.starts_with("signal")));
    assert!(!sim.events().contains(&"remove s"));
}

#[test]
fn a_failed_restart_waits_in_run_container_error_and_is_tried_again_without_counting() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script(
            "a",
            &[
                Run::ExitAfter(1, 0),
                Run::StartError,
                Run::StartError,
                Run::UntilSignalled,
            ],
        )
        .begin();
    sim.run_for(Duration::from_secs(12));
    assert_eq!(
        sim.status("a").state,
        crate::state::ContainerState::Waiting {
            reason: "RunContainerError".into()
        }
    );
    assert_eq!(sim.status("a").restart_count, 1);
    sim.run_for(Duration::from_secs(100));
    // The failed attempts wait out the growing back-off, counted from the crash.
    assert_eq!(sim.starts_of("a"), [0, 0, 10 * SEC, 20 * SEC]);
    assert_eq!(sim.status("a").restart_count, 1);
    assert!(sim.status("a").state.is_running());
    assert!(sim.outcome.is_none());
}

/// The kubelet's `ErrCreateContainerConfig`: a restart whose env file is gone
/// waits as CreateContainerConfigError, says why in a warning event, and is
/// tried again after the back-off (a sidecar may write the file by then).
#[test]
fn a_restart_whose_config_cannot_be_made_waits_in_create_container_config_error() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script(
            "a",
            &[Run::ExitAfter(1, 0), Run::ConfigError, Run::UntilSignalled],
        )
        .begin();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(
        sim.status("a").state,
        crate::state::ContainerState::Waiting {
            reason: "CreateContainerConfigError".into()
        }
    );
    let warned = sim.core.state().events.iter().any(|e| {
        e.kind == "Warning"
            && e.reason == "Failed"
            && e.message == "Error: env V: env file \"v.env\" does not exist (a)"
    });
    assert!(warned, "{:?}", sim.core.state().events);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.starts_of("a"), [0, 0, 10 * SEC]);
    assert!(sim.status("a").state.is_running());
    assert_eq!(sim.status("a").restart_count, 1);
}

#[test]
fn nothing_restarts_once_the_infra_is_gone() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script("a", &[Run::ExitAfter(1, 0)])
        .script("POD", &[Run::IgnoresTerm])
        .begin();
    sim.run_for(Duration::from_secs(5));
    sim.exit_now("POD", 1);
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.starts_of("a"), [0, 0]);
}

#[test]
fn the_state_is_written_before_up_is_told_the_pod_started() {
    let plan = plan(Always, 30, &[("a", App)]);
    let mut core = Core::new(&plan, state(&plan, false), Timing::default());
    let t0 = Instant::now();
    let now = Now {
        mono: t0,
        wall: SystemTime::UNIX_EPOCH,
    };
    core.start(now);
    core.handle(
        Input::Started {
            ctr: 0,
            result: Ok(10),
        },
        now,
        &NoLogs,
    );
    core.handle(Input::InfraReady(Ok(Vec::new())), now, &NoLogs);
    let out = core.handle(
        Input::Started {
            ctr: 1,
            result: Ok(11),
        },
        now,
        &NoLogs,
    );
    let publish = out.iter().position(|c| *c == Command::Publish).unwrap();
    let report = out
        .iter()
        .position(|c| *c == Command::ReportStarted)
        .unwrap();
    assert!(publish < report, "{out:?}");
    assert_eq!(out.iter().filter(|c| **c == Command::Publish).count(), 1);
    assert_eq!(core.state().phase, PodPhase::Running);
}

#[test]
fn a_restart_that_starts_after_its_steps_grace_is_killed_at_once() {
    let mut sim = Sim::new(Always, 2, &[("a", App)])
        .script(
            "a",
            &[Run::ExitAfter(1, 0), Run::SlowStartIgnoresTerm(6000)],
        )
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    // The grace ran out at 3 s while its start was under way; once it runs (6 s)
    // there is no grace left to wait out, and SIGTERM would be ignored.
    assert_eq!(sim.times("signal a SIGKILL all"), [6 * SEC]);
    assert!(sim.times("signal a SIGTERM").is_empty());
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_restart_while_apps_still_start_does_not_free_a_start_worker() {
    let timing = Timing {
        start_workers: 1,
        ..Timing::default()
    };
    let mut sim = Sim::with(
        Always,
        30,
        &[("a", App), ("b", App), ("c", App)],
        timing,
        false,
    )
    .script("a", &[Run::ExitAfter(1, 0), Run::UntilSignalled])
    .script("b", &[Run::SlowStart(100)])
    .script("c", &[Run::SlowStart(100)])
    .begin();
    sim.run_for(Duration::from_secs(5));
    // a's restart (at once, the kubelet's first) is not one of the first starts:
    // c still waits for b's.
    assert_eq!(sim.starts_of("a"), [0, 0]);
    assert_eq!(sim.starts_of("c"), [100]);
    assert_eq!(sim.times("started"), [200]);
}

#[test]
fn a_failed_restart_while_apps_still_start_is_retried_not_fatal() {
    let timing = Timing {
        start_workers: 1,
        ..Timing::default()
    };
    let mut sim = Sim::with(Always, 30, &[("a", App), ("b", App)], timing, false)
        .script(
            "a",
            &[Run::ExitAfter(1, 0), Run::StartError, Run::UntilSignalled],
        )
        .script("b", &[Run::SlowStart(1000)])
        .begin();
    sim.run_for(Duration::from_secs(30));
    assert!(sim.outcome.is_none(), "{:?}", sim.outcome);
    assert_eq!(sim.starts_of("a"), [0, 0, 10 * SEC]);
    assert_eq!(sim.times("started"), [1000]);
}

#[test]
fn a_late_starter_killed_just_before_its_steps_kill_timer_gets_its_own_wait() {
    let mut sim = Sim::new(Always, 2, &[("a", App)])
        .script("a", &[Run::ExitAfter(1, 0), Run::SlowStartUnkillable(4900)])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    // Grace over at 3 s, the step's Kill timer at 5 s; the restart runs at 4.9 s
    // and is killed then: it is deleted 2 s after its own SIGKILL, not 0.1 s.
    assert_eq!(sim.times("signal a SIGKILL all"), [4900]);
    assert_eq!(sim.times("remove a"), [0, 6900]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn an_oom_killed_run_is_reported_as_oomkilled_and_restarted_like_any_crash() {
    let mut sim = Sim::new(Always, 30, &[("a", App)]).begin();
    sim.run_for(Duration::from_secs(1));
    sim.exit_with(
        "a",
        Exit {
            code: 137,
            signal: Some(9),
            oom_killed: true,
        },
    );
    let s = sim.status("a");
    let terminated = std::iter::once(&s.state)
        .chain(s.last_state.as_ref())
        .find_map(|st| match st {
            ContainerState::Terminated {
                reason, exit_code, ..
            } => Some((reason.as_str(), *exit_code)),
            _ => None,
        });
    assert_eq!(terminated, Some(("OOMKilled", 137)));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.starts_of("a").len(), 2, "{:?}", sim.events());
}

#[test]
fn a_stop_with_a_grace_period_overrides_the_pods_own() {
    let mut sim = Sim::new(Always, 600, &[("a", App)])
        .script("a", &[Run::IgnoresTerm])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop_with(Some(Duration::from_secs(3)));
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.times("signal a SIGTERM"), [1000]);
    assert_eq!(sim.times("signal a SIGKILL all"), [4000]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_second_stop_with_a_shorter_grace_period_shortens_the_stop_under_way() {
    let mut sim = Sim::new(Always, 600, &[("a", App)])
        .script("a", &[Run::IgnoresTerm])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(10));
    // A longer one later changes nothing; a shorter one ends it after 2 s more.
    sim.stop_with(Some(Duration::from_secs(900)));
    sim.stop_with(Some(Duration::from_secs(2)));
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.times("signal a SIGTERM"), [1000]);
    assert_eq!(sim.times("signal a SIGKILL all"), [13000]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

// --- probes ------------------------------------------------------------------------

/// An exec probe with the given timings (seconds) and thresholds.
fn probe(delay: u32, period: u32, success: u32, failure: u32) -> Probe {
    Probe {
        action: ProbeAction::Exec {
            command: vec!["check".into()],
        },
        initial_delay_seconds: delay,
        timeout_seconds: 1,
        period_seconds: period,
        success_threshold: success,
        failure_threshold: failure,
        termination_grace_period_seconds: None,
    }
}

fn readiness(p: Probe) -> Probes {
    Probes {
        readiness: Some(p),
        ..Default::default()
    }
}

fn liveness(p: Probe) -> Probes {
    Probes {
        liveness: Some(p),
        ..Default::default()
    }
}

impl Sim {
    fn probes_of(&self, name: &str, kind: ProbeKind) -> Vec<u64> {
        self.times(&format!("probe {name} {}", kind.title()))
    }

    fn ready(&self, name: &str) -> bool {
        self.status(name).ready
    }
}

#[test]
fn without_probes_a_running_container_is_ready_at_once() {
    let mut sim = Sim::new(Always, 30, &[("a", App)]).begin();
    sim.run_for(Duration::from_secs(1));
    assert!(sim.ready("a"));
    assert_eq!(sim.status("a").started, Some(true));
}

#[test]
fn a_container_is_ready_only_once_its_readiness_probe_succeeds_after_its_initial_delay() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", readiness(probe(5, 2, 1, 3)))],
    )
    .script_probe("a", ProbeKind::Readiness, &[(false, 100), (true, 100)])
    .begin();
    sim.run_for(Duration::from_secs(4));
    assert!(!sim.ready("a"), "not ready before any probe succeeded");
    assert!(
        sim.events().contains(&"started"),
        "up is told it runs all the same"
    );
    sim.run_for(Duration::from_secs(4));
    // First at 5 s (the initial delay), failing; then every period from the last start.
    assert_eq!(sim.probes_of("a", ProbeKind::Readiness), [5 * SEC, 7 * SEC]);
    assert!(sim.ready("a"));
    assert_eq!(sim.status("a").probes.len(), 1);
    assert!(sim.status("a").probes[0].success);
}

#[test]
fn readiness_flips_only_after_its_thresholds_and_never_restarts_anything() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", readiness(probe(0, 1, 2, 3)))],
    )
    .script_probe(
        "a",
        ProbeKind::Readiness,
        &[
            (true, 0),
            (true, 0),
            (false, 0),
            (false, 0),
            (false, 0),
            (true, 0),
        ],
    )
    .begin();
    sim.run_for(Duration::from_millis(500));
    assert!(!sim.ready("a"), "one success of the two it needs");
    sim.run_for(Duration::from_secs(1));
    assert!(sim.ready("a"), "two successes");
    sim.run_for(Duration::from_secs(2));
    assert!(sim.ready("a"), "two failures of the three it needs");
    sim.run_for(Duration::from_secs(1));
    assert!(!sim.ready("a"), "three failures");
    let record = &sim.status("a").probes[0];
    assert_eq!(
        (record.success, record.message.as_str()),
        (false, "a is unwell")
    );
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.starts_of("a"), [0], "readiness restarts nothing");
}

#[test]
fn a_liveness_failure_stops_the_container_with_its_signal_and_restarts_it() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", liveness(probe(0, 10, 1, 3)))],
    )
    .script_probe("a", ProbeKind::Liveness, &[(true, 0), (false, 0)])
    .begin();
    sim.run_for(Duration::from_secs(35));
    // Probed at 0 (ok), then fails at 10, 20, 30: the third failure acts.
    assert_eq!(
        sim.probes_of("a", ProbeKind::Liveness)[..4],
        [0, 10 * SEC, 20 * SEC, 30 * SEC]
    );
    assert_eq!(sim.times("signal a SIGTERM"), [30 * SEC]);
    // The first restart comes at once (the kubelet's back-off starts at 0).
    assert_eq!(sim.starts_of("a"), [0, 30 * SEC]);
    let s = sim.status("a");
    assert_eq!(s.restart_count, 1);
    match &s.last_state {
        Some(ContainerState::Terminated {
            exit_code,
            reason,
            message,
            ..
        }) => {
            assert_eq!((*exit_code, reason.as_str()), (143, "Error"));
            assert_eq!(
                message.as_deref(),
                Some("Liveness probe failed: a is unwell")
            );
        }
        other => panic!("{other:?}"),
    }
    // The new run is probed again from its own start.
    assert_eq!(sim.probes_of("a", ProbeKind::Liveness)[4], 30 * SEC);
}

#[test]
fn a_liveness_kill_ends_with_sigkill_after_the_probes_own_grace_period() {
    let mut p = probe(0, 1, 1, 1);
    p.termination_grace_period_seconds = Some(5);
    let mut sim = Sim::probed(Always, 600, &[("a", App)], &[("a", liveness(p))])
        .script("a", &[Run::IgnoresTerm, Run::UntilSignalled])
        .script_probe("a", ProbeKind::Liveness, &[(false, 0), (true, 0)])
        .begin();
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.times("signal a SIGTERM"), [0]);
    assert_eq!(sim.times("signal a SIGKILL all"), [5 * SEC]);
    assert_eq!(sim.starts_of("a"), [0, 5 * SEC]);
}

#[test]
fn a_liveness_failure_under_never_ends_the_container_for_good() {
    let mut sim = Sim::probed(
        Never,
        30,
        &[("a", App)],
        &[("a", liveness(probe(0, 1, 1, 1)))],
    )
    .script_probe("a", ProbeKind::Liveness, &[(false, 0)])
    .begin();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.starts_of("a"), [0]);
    assert_eq!(sim.outcome, Some(Outcome::Completed(PodPhase::Failed)));
}

#[test]
fn liveness_and_readiness_wait_for_the_startup_probe() {
    let probes = Probes {
        startup: Some(probe(0, 1, 1, 30)),
        liveness: Some(probe(0, 10, 1, 3)),
        readiness: Some(probe(0, 10, 1, 3)),
    };
    let mut sim = Sim::probed(Always, 30, &[("a", App)], &[("a", probes)])
        .script_probe(
            "a",
            ProbeKind::Startup,
            &[(false, 0), (false, 0), (false, 0), (true, 0)],
        )
        .begin();
    sim.run_for(Duration::from_secs(20));
    assert_eq!(
        sim.probes_of("a", ProbeKind::Startup),
        [0, SEC, 2 * SEC, 3 * SEC]
    );
    // Both begin at the startup probe's success, and it is not run again.
    assert_eq!(sim.probes_of("a", ProbeKind::Liveness), [3 * SEC, 13 * SEC]);
    assert_eq!(
        sim.probes_of("a", ProbeKind::Readiness),
        [3 * SEC, 13 * SEC]
    );
    assert_eq!(sim.status("a").started, Some(true));
    assert!(sim.ready("a"));
}

#[test]
fn a_startup_probe_that_keeps_failing_restarts_the_container() {
    let probes = Probes {
        startup: Some(probe(0, 1, 1, 3)),
        ..Default::default()
    };
    let mut sim = Sim::probed(Always, 30, &[("a", App)], &[("a", probes)])
        .script_probe("a", ProbeKind::Startup, &[(false, 0)])
        .begin();
    sim.run_for(Duration::from_millis(2500));
    assert_eq!(sim.status("a").started, Some(false));
    assert!(!sim.ready("a"));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.times("signal a SIGTERM"), [2 * SEC]);
    assert_eq!(sim.starts_of("a"), [0, 2 * SEC]);
    match &sim.status("a").last_state {
        Some(ContainerState::Terminated { message, .. }) => {
            assert_eq!(
                message.as_deref(),
                Some("Startup probe failed: a is unwell")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sidecars_startup_probe_gates_the_containers_after_it() {
    let probes = Probes {
        startup: Some(probe(0, 1, 1, 30)),
        ..Default::default()
    };
    let mut sim = Sim::probed(
        Always,
        30,
        &[("s", Sidecar), ("i", Init), ("a", App)],
        &[("s", probes)],
    )
    .script("i", &[Run::ExitAfter(0, 10)])
    .script_probe(
        "s",
        ProbeKind::Startup,
        &[(false, 0), (false, 0), (true, 0)],
    )
    .begin();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.starts_of("s"), [0]);
    assert_eq!(
        sim.starts_of("i"),
        [2 * SEC],
        "after the sidecar's startup probe succeeded"
    );
    assert_eq!(sim.starts_of("a"), [2 * SEC + 10]);
}

#[test]
fn a_sidecars_readiness_counts_and_its_failures_restart_nothing() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("s", Sidecar), ("a", App)],
        &[("s", readiness(probe(0, 1, 1, 1)))],
    )
    .script_probe("s", ProbeKind::Readiness, &[(false, 0)])
    .begin();
    sim.run_for(Duration::from_secs(5));
    // Without a startup probe, the app container does not wait for readiness.
    assert_eq!(sim.starts_of("a"), [0]);
    assert!(!sim.ready("s"));
    assert!(sim.ready("a"));
    assert_eq!(sim.starts_of("s"), [0]);
}

#[test]
fn no_probe_runs_while_the_pod_stops_and_a_late_result_is_dropped() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", liveness(probe(0, 1, 1, 1)))],
    )
    // It outlives its stop signal, so the pod is still stopping when the
    // failing answer comes (at 2.5 s).
    .script("a", &[Run::IgnoresTerm])
    .script_probe("a", ProbeKind::Liveness, &[(true, 0), (false, 1500)])
    .begin();
    sim.run_for(Duration::from_millis(1100));
    sim.stop();
    sim.run_for(Duration::from_secs(5));
    assert!(sim.outcome.is_none(), "still stopping when the answer came");
    assert_eq!(sim.probes_of("a", ProbeKind::Liveness), [0, SEC]);
    assert_eq!(
        sim.times("signal a SIGTERM"),
        [1100],
        "no second stop signal"
    );
    assert!(
        !sim.event_reasons().iter().any(|(r, _, _)| r == "Unhealthy"),
        "the late failure counts for nothing"
    );
    sim.run_for(Duration::from_secs(40));
    assert_eq!(sim.starts_of("a"), [0]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_probe_that_takes_longer_than_its_period_is_not_run_twice_at_once() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", readiness(probe(0, 1, 1, 3)))],
    )
    .script_probe("a", ProbeKind::Readiness, &[(true, 2500)])
    .begin();
    sim.run_for(Duration::from_secs(6));
    // Each run takes 2.5 s; the next starts when it ends (its period is over).
    assert_eq!(sim.probes_of("a", ProbeKind::Readiness), [0, 2500, 5000]);
}

// --- lifecycle hooks ----------------------------------------------------------------

fn exec_hook() -> Hook {
    Hook::Exec {
        command: vec!["hook".into()],
    }
}

fn post_start() -> Hooks {
    Hooks {
        post_start: Some(exec_hook()),
        ..Default::default()
    }
}

fn pre_stop(hook: Hook) -> Hooks {
    Hooks {
        pre_stop: Some(hook),
        ..Default::default()
    }
}

#[test]
fn a_container_is_not_running_and_not_probed_until_its_post_start_hook_completes() {
    let mut plan = plan(Always, 30, &[("a", App)]);
    plan.containers[0].hooks = post_start();
    plan.containers[0].probes = readiness(probe(0, 1, 1, 3));
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script_hook("a", HookKind::PostStart, true, 3000)
        .begin();
    sim.run_for(Duration::from_secs(2));
    assert!(matches!(
        &sim.status("a").state,
        ContainerState::Waiting { reason } if reason == "ContainerCreating"
    ));
    assert!(sim.probes_of("a", ProbeKind::Readiness).is_empty());
    sim.run_for(Duration::from_secs(2));
    assert!(sim.status("a").state.is_running());
    // Its start time is the runtime's start, not the hook's end (as in Kubernetes).
    assert!(matches!(
        &sim.status("a").state,
        ContainerState::Running { started_at, .. } if started_at == "1970-01-01T00:00:00Z"
    ));
    assert_eq!(sim.probes_of("a", ProbeKind::Readiness)[0], 3 * SEC);
    assert_eq!(sim.times("hook a PostStart"), [0]);
}

#[test]
fn a_failed_post_start_hook_kills_the_container_and_restarts_it_with_the_hooks_output() {
    let mut sim = Sim::hooked(Always, 30, &[("a", App)], &[("a", post_start())])
        .script("a", &[Run::UntilSignalled, Run::UntilSignalled])
        .script_hook("a", HookKind::PostStart, false, 500)
        .begin();
    sim.run_for(Duration::from_millis(700));
    assert_eq!(sim.times("signal a SIGTERM"), [500]);
    assert_eq!(sim.starts_of("a"), [0, 500]);
    match &sim.status("a").last_state {
        Some(ContainerState::Terminated { message, .. }) => assert_eq!(
            message.as_deref(),
            Some("PostStartHookError: a's hook failed")
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sidecars_post_start_hook_holds_the_next_container() {
    let mut sim = Sim::hooked(
        Always,
        30,
        &[("s", Sidecar), ("a", App)],
        &[("s", post_start())],
    )
    .script_hook("s", HookKind::PostStart, true, 1500)
    .begin();
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.starts_of("a"), [1500]);
}

#[test]
fn pre_stop_runs_before_the_stop_signal_and_sigkill_comes_at_the_end_of_the_grace_period() {
    let mut sim = Sim::hooked(Always, 10, &[("a", App)], &[("a", pre_stop(exec_hook()))])
        .script("a", &[Run::IgnoresTerm])
        .script_hook("a", HookKind::PreStop, true, 3000)
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.times("hook a PreStop"), [1000]);
    assert_eq!(sim.times("signal a SIGTERM"), [4000]);
    assert_eq!(sim.times("signal a SIGKILL all"), [11000]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn a_pre_stop_hook_that_outlasts_the_grace_period_is_followed_by_the_signal_and_sigkill_2s_later() {
    let mut sim = Sim::hooked(Always, 5, &[("a", App)], &[("a", pre_stop(exec_hook()))])
        .script("a", &[Run::IgnoresTerm])
        .script_hook("a", HookKind::PreStop, true, 60_000)
        .begin();
    sim.run_for(Duration::ZERO);
    sim.stop();
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.times("signal a SIGTERM"), [5000]);
    assert_eq!(sim.times("signal a SIGKILL all"), [7000]);
}

#[test]
fn sigkill_comes_at_least_2s_after_a_late_pre_stop_hook() {
    let mut sim = Sim::hooked(Always, 5, &[("a", App)], &[("a", pre_stop(exec_hook()))])
        .script("a", &[Run::IgnoresTerm])
        .script_hook("a", HookKind::PreStop, true, 4500)
        .begin();
    sim.run_for(Duration::ZERO);
    sim.stop();
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.times("signal a SIGTERM"), [4500]);
    assert_eq!(sim.times("signal a SIGKILL all"), [6500]);
}

#[test]
fn a_sleep_pre_stop_hook_is_waited_out_by_the_supervisor_itself() {
    let mut sim = Sim::hooked(
        Always,
        30,
        &[("a", App)],
        &[("a", pre_stop(Hook::Sleep { seconds: 2 }))],
    )
    .begin();
    sim.run_for(Duration::ZERO);
    sim.stop();
    sim.run_for(Duration::from_secs(10));
    assert!(
        sim.times("hook a PreStop").is_empty(),
        "no command for a sleep"
    );
    assert_eq!(sim.times("signal a SIGTERM"), [2000]);
}

#[test]
fn sidecars_stop_after_the_apps_in_reverse_each_after_its_pre_stop_hook() {
    let hooks = pre_stop(exec_hook());
    let mut sim = Sim::hooked(
        Always,
        30,
        &[("s1", Sidecar), ("s2", Sidecar), ("a", App)],
        &[("s1", hooks.clone()), ("s2", hooks.clone()), ("a", hooks)],
    )
    .script_hook("a", HookKind::PreStop, true, 1000)
    .script_hook("s2", HookKind::PreStop, true, 1000)
    .script_hook("s1", HookKind::PreStop, true, 1000)
    .begin();
    sim.run_for(Duration::from_secs(1));
    let before = sim.trace.len();
    sim.stop();
    sim.run_for(Duration::from_secs(30));
    let after: Vec<&str> = sim.trace[before..]
        .iter()
        .map(|(_, e)| e.as_str())
        .collect();
    assert_eq!(
        after,
        [
            "hook a PreStop",
            "signal a SIGTERM",
            "remove a",
            "hook s2 PreStop",
            "signal s2 SIGTERM",
            "remove s2",
            "hook s1 PreStop",
            "signal s1 SIGTERM",
            "remove s1",
            "signal POD SIGTERM",
            "remove POD",
            "finish Stopped",
        ]
    );
}

#[test]
fn a_liveness_kill_runs_the_pre_stop_hook_first() {
    let mut plan = plan(Always, 30, &[("a", App)]);
    plan.containers[0].hooks = pre_stop(exec_hook());
    plan.containers[0].probes = liveness(probe(0, 1, 1, 1));
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script_probe("a", ProbeKind::Liveness, &[(false, 0), (true, 0)])
        .script_hook("a", HookKind::PreStop, true, 500)
        .begin();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.times("hook a PreStop"), [0]);
    assert_eq!(sim.times("signal a SIGTERM"), [500]);
    assert_eq!(sim.starts_of("a"), [0, 500]);
}

// --- termination messages ------------------------------------------------------------

struct Written(&'static str, &'static str);
impl Logs for Written {
    fn last_lines(&self, _: Ctr, _: u32, lines: usize) -> String {
        assert_eq!(lines, 80, "FallbackToLogsOnError reads 80 lines");
        self.1.into()
    }
    fn termination_message(&self, _: Ctr) -> String {
        self.0.into()
    }
}

fn exit(code: i32) -> Exit {
    Exit {
        code,
        signal: None,
        oom_killed: false,
    }
}

#[test]
fn the_termination_message_file_wins_then_the_kill_reason_then_the_logs_of_a_failed_run() {
    let mut plan = plan(Always, 30, &[("a", App)]);
    plan.containers[0].termination_message_policy = TerminationMessagePolicy::FallbackToLogsOnError;
    let sim = Sim::with_plan(plan, Timing::default(), false);
    let core = &sim.core;
    let m = |code, kill: Option<&str>, logs: &Written| {
        core.termination_message(1, &exit(code), kill.map(str::to_string), logs)
    };
    assert_eq!(
        m(1, Some("Liveness probe failed: x"), &Written("bye", "log")),
        Some("bye".into())
    );
    assert_eq!(
        m(1, Some("Liveness probe failed: x"), &Written("", "log")),
        Some("Liveness probe failed: x".into())
    );
    assert_eq!(
        m(1, None, &Written("", "the end\n")),
        Some("the end\n".into())
    );
    // A run that succeeded takes nothing from its log.
    assert_eq!(m(0, None, &Written("", "the end\n")), None);
    // At most 2048 bytes of the log's end.
    let long: &'static str = Box::leak("x".repeat(5000).into_boxed_str());
    assert_eq!(m(1, None, &Written("", long)).unwrap().len(), 2048);
}

#[test]
fn under_the_file_policy_a_failed_run_takes_nothing_from_its_log() {
    let sim = Sim::new(Always, 30, &[("a", App)]);
    assert_eq!(
        sim.core
            .termination_message(1, &exit(3), None, &Written("", "the end\n")),
        None
    );
}

// --- activeDeadlineSeconds ---------------------------------------------------------------

#[test]
fn a_pod_past_its_active_deadline_is_stopped_and_fails_with_deadline_exceeded() {
    let mut plan = plan(Always, 3, &[("a", App)]);
    plan.active_deadline_seconds = Some(10);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::IgnoresTerm])
        .begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.times("signal a SIGTERM"), [10 * SEC]);
    assert_eq!(sim.times("signal a SIGKILL all"), [13 * SEC]);
    assert_eq!(
        sim.outcome,
        Some(Outcome::Failed(
            "Pod was active on the node longer than the specified deadline".into()
        ))
    );
    assert_eq!(sim.core.state().phase, PodPhase::Failed);
    assert_eq!(sim.core.state().reason.as_deref(), Some("DeadlineExceeded"));
}

#[test]
fn a_pod_that_completes_before_its_deadline_is_not_failed_by_it() {
    let mut plan = plan(Never, 3, &[("a", App)]);
    plan.active_deadline_seconds = Some(10);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(0, 1000)])
        .begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.outcome, Some(Outcome::Completed(PodPhase::Succeeded)));
    assert_eq!(sim.core.state().reason, None);
}

// --- emptyDir sizeLimit ----------------------------------------------------------------

fn sized_plan(policy: RestartPolicy, containers: &[(&str, ContainerKind)]) -> RunPlan {
    let mut plan = plan(policy, 30, containers);
    plan.volume_limits = vec![crate::run_plan::VolumeLimit {
        name: "cache".into(),
        path: "/p/volumes/cache".into(),
        bytes: 1 << 20,
        written: "1Mi".into(),
    }];
    plan
}

fn sized(plan: RunPlan, script: &[(u64, VolumeUsage)]) -> Sim {
    let mut sim = Sim::with_plan(plan, Timing::default(), false).script("a", &[Run::IgnoresTerm]);
    sim.volume_script = script
        .iter()
        .map(|(at, u)| (Duration::from_secs(*at), u.clone()))
        .collect();
    sim.begin()
}

const EVICTED: &str = "Usage of EmptyDir volume \"cache\" exceeds the limit \"1Mi\". ";

/// The eviction manager's emptyDir check: measured every 10 s; past the
/// limit the pod is evicted: Failed, reason Evicted with the kubelet's message
/// (the limit as written), its containers stopped with 2 s of grace whatever
/// the pod's, and not restarted under restartPolicy Always. The kubelet adds
/// no DisruptionTarget condition for it (emptyDirLimitEviction passes none).
#[test]
fn a_disk_emptydir_past_its_size_limit_evicts_the_pod() {
    let mut sim = sized(
        sized_plan(Always, &[("a", App)]),
        &[(15, VolumeUsage::Bytes(2 << 20))],
    );
    sim.run_for(Duration::from_secs(60));
    assert_eq!(
        sim.times("measure volumes"),
        [10 * SEC, 20 * SEC],
        "measured until past the limit"
    );
    assert_eq!(sim.outcome, Some(Outcome::Failed(EVICTED.into())));
    assert_eq!(sim.times("signal a SIGTERM"), [20 * SEC]);
    assert_eq!(sim.times("signal a SIGKILL all"), [22 * SEC]);
    assert_eq!(sim.starts_of("a"), [0], "an evicted pod is not restarted");
    let state = sim.core.state();
    assert_eq!(state.phase, PodPhase::Failed);
    assert_eq!(state.reason.as_deref(), Some("Evicted"));
    assert_eq!(state.message.as_deref(), Some(EVICTED));
    assert!(
        !state
            .conditions
            .iter()
            .any(|c| c.kind == "DisruptionTarget")
    );
    assert!(
        state
            .events
            .iter()
            .any(|e| e.kind == "Warning" && e.reason == "Evicted" && e.message == EVICTED),
        "{:?}",
        state.events
    );
}

/// At the limit is not past it; a walk that fails is logged and tried again
/// at the next check (as the kubelet does); nothing is measured once the pod
/// stops.
#[test]
fn a_volume_at_its_limit_or_unmeasured_keeps_the_pod_running() {
    let mut sim = sized(
        sized_plan(Always, &[("a", App)]),
        &[
            (0, VolumeUsage::Bytes(1 << 20)),
            (15, VolumeUsage::Unknown("permission denied".into())),
            (25, VolumeUsage::Bytes(100)),
        ],
    );
    sim.run_for(Duration::from_secs(45));
    assert_eq!(
        sim.times("measure volumes"),
        [10 * SEC, 20 * SEC, 30 * SEC, 40 * SEC]
    );
    assert!(sim.outcome.is_none());
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.times("measure volumes").len(), 4);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

/// A tree the walk cannot bound (deeper or larger than it looks at) is taken
/// as over the limit: a container cannot opt out of its sizeLimit so.
#[test]
fn a_volume_the_walk_cannot_bound_evicts_the_pod() {
    let mut sim = sized(
        sized_plan(Always, &[("a", App)]),
        &[(
            0,
            VolumeUsage::Unbounded("it is deeper than 256 directories".into()),
        )],
    );
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        sim.core.state().message.as_deref(),
        Some(
            "Usage of EmptyDir volume \"cache\" could not be measured (it is deeper than 256 directories): taken to exceed the limit \"1Mi\". "
        )
    );
    assert_eq!(sim.core.state().reason.as_deref(), Some("Evicted"));
}

/// Measuring goes on while the pod restarts in place (KEP-5532), and an
/// eviction then ends the restart: the pod does not come back.
#[test]
fn the_size_limit_is_kept_through_an_in_place_restart_and_ends_it() {
    let mut plan = sized_plan(Always, &[("a", App), ("b", App)]);
    restart_all_on_exit_7(&mut plan);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(7, 9000), Run::UntilSignalled])
        // b takes its time to go: the restart's stop is under way at 10 s.
        .script("b", &[Run::Unkillable]);
    sim.volume_script = vec![(Duration::from_secs(9), VolumeUsage::Bytes(2 << 20))];
    let mut sim = sim.begin();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.times("measure volumes"), [10 * SEC]);
    assert_eq!(sim.outcome, Some(Outcome::Failed(EVICTED.into())));
    assert_eq!(sim.starts_of("a"), [0], "no restart after the eviction");
}

/// `up --keep` keeps a pod that failed to start; an eviction still stops it.
#[test]
fn an_eviction_stops_the_containers_even_under_keep() {
    let plan = sized_plan(Always, &[("i", Init), ("a", App)]);
    let mut sim = Sim::with_plan(plan, Timing::default(), true).script("i", &[Run::UntilSignalled]);
    sim.volume_script = vec![(Duration::ZERO, VolumeUsage::Bytes(2 << 20))];
    let mut sim = sim.begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.times("signal i SIGTERM"), [10 * SEC]);
    assert_eq!(sim.core.state().reason.as_deref(), Some("Evicted"));
}

// --- conditions and events ------------------------------------------------------------

impl Sim {
    fn condition(&self, kind: &str) -> (String, Option<String>) {
        let c = self
            .core
            .state()
            .conditions
            .iter()
            .find(|c| c.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} condition"));
        (c.status.clone(), c.reason.clone())
    }

    fn event_reasons(&self) -> Vec<(String, Option<String>, u32)> {
        self.core
            .state()
            .events
            .iter()
            .map(|e| (e.reason.clone(), e.container.clone(), e.count))
            .collect()
    }
}

#[test]
fn the_conditions_follow_init_containers_and_readiness() {
    let mut plan = plan(Always, 30, &[("i", Init), ("a", App)]);
    plan.containers[1].probes = readiness(probe(0, 1, 1, 1));
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("i", &[Run::ExitAfter(0, 2000)])
        .script_probe("a", ProbeKind::Readiness, &[(false, 0), (true, 0)])
        .begin();
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.condition("PodReadyToStartContainers").0, "True");
    assert_eq!(
        sim.condition("Initialized"),
        ("False".into(), Some("ContainersNotInitialized".into()))
    );
    sim.run_for(Duration::from_millis(1500));
    assert_eq!(sim.condition("Initialized").0, "True");
    assert_eq!(
        sim.condition("Ready"),
        ("False".into(), Some("ContainersNotReady".into()))
    );
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.condition("Ready").0, "True");
    assert_eq!(sim.condition("ContainersReady").0, "True");
}

#[test]
fn probe_failures_kills_and_back_offs_are_events() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", liveness(probe(0, 1, 1, 2)))],
    )
    .script(
        "a",
        &[
            Run::UntilSignalled,
            Run::ExitAfter(1, 0),
            Run::UntilSignalled,
        ],
    )
    .script_probe(
        "a",
        ProbeKind::Liveness,
        &[(false, 0), (false, 0), (true, 0)],
    )
    .begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        sim.event_reasons(),
        // In the order of last occurrence, repeats counted (kubectl's view).
        [
            ("Unhealthy".to_string(), Some("a".to_string()), 2),
            ("Killing".into(), Some("a".into()), 1),
            ("BackOff".into(), Some("a".into()), 1),
            ("Started".into(), Some("a".into()), 3),
        ]
    );
    let killing = &sim.core.state().events[1];
    assert_eq!(
        killing.message,
        "Container a failed liveness probe, will be restarted"
    );
    assert_eq!(killing.kind, "Normal");
    assert_eq!(
        sim.core.state().events[0].message,
        "Liveness probe failed: a is unwell"
    );
}

// --- container restart policies and rules ----------------------------------------------

fn rule(action: crate::model::RestartAction, codes: &[i32]) -> crate::model::RestartRule {
    crate::model::RestartRule {
        action,
        operator: crate::model::ExitCodeOperator::In,
        values: codes.to_vec(),
    }
}

/// The first container, under its own `Never`, restarts the whole pod when it
/// exits 7 (KEP-5532's RestartAllContainers).
fn restart_all_on_exit_7(plan: &mut RunPlan) {
    plan.containers[0].restart_policy = Some(Never);
    plan.containers[0].restart_rules = vec![rule(
        crate::model::RestartAction::RestartAllContainers,
        &[7],
    )];
}

#[test]
fn a_containers_own_restart_policy_overrides_the_pods() {
    let mut plan = plan(Always, 30, &[("once", App), ("a", App)]);
    plan.containers[0].restart_policy = Some(Never);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("once", &[Run::ExitAfter(1, 100)])
        .begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.starts_of("once"), [0]);
    assert_eq!(sim.outcome, None, "the other app container runs on");
}

#[test]
fn a_restart_rule_restarts_on_its_exit_codes_even_under_never() {
    let mut plan = plan(Never, 30, &[("a", App)]);
    plan.containers[0].restart_policy = Some(Never);
    plan.containers[0].restart_rules = vec![rule(crate::model::RestartAction::Restart, &[42])];
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script(
            "a",
            &[
                Run::ExitAfter(42, 100),
                Run::ExitAfter(42, 100),
                Run::ExitAfter(1, 100),
            ],
        )
        .begin();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(sim.starts_of("a").len(), 3);
    assert_eq!(sim.outcome, Some(Outcome::Completed(PodPhase::Failed)));
}

#[test]
fn an_init_container_follows_its_own_restart_policy() {
    let mut plan = plan(Always, 30, &[("i", Init), ("a", App)]);
    plan.containers[0].restart_policy = Some(Never);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("i", &[Run::ExitAfter(1, 10)])
        .begin();
    sim.run_for(Duration::from_secs(5));
    assert!(sim.starts_of("a").is_empty());
    assert!(matches!(sim.outcome, Some(Outcome::Failed(_))));

    let mut retried = super::tests::plan(Never, 30, &[("i", Init), ("a", App)]);
    retried.containers[0].restart_policy = Some(OnFailure);
    let mut sim = Sim::with_plan(retried, Timing::default(), false)
        .script("i", &[Run::ExitAfter(1, 10), Run::ExitAfter(0, 10)])
        .begin();
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.starts_of("i").len(), 2);
    assert_eq!(sim.starts_of("a").len(), 1);
}

#[test]
fn restart_all_containers_stops_every_container_but_the_infra_and_starts_the_pod_again() {
    let mut plan = plan(
        Always,
        3,
        &[("i", Init), ("s", Sidecar), ("a", App), ("b", App)],
    );
    plan.containers[2].restart_policy = Some(Never);
    plan.containers[2].restart_rules = vec![rule(
        crate::model::RestartAction::RestartAllContainers,
        &[7],
    )];
    plan.containers[1].hooks = pre_stop(exec_hook());
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("i", &[Run::ExitAfter(0, 10)])
        .script("a", &[Run::ExitAfter(7, 1000), Run::UntilSignalled])
        .script("s", &[Run::SlowStartIgnoresTerm(0), Run::UntilSignalled])
        .begin();
    // a exits at 1010 ms (it started after the init container's 10 ms); the
    // sidecar's stop is under way.
    sim.run_for(Duration::from_millis(1010));
    assert_eq!(
        sim.condition("AllContainersRestarting"),
        ("True".into(), None)
    );
    sim.run_for(Duration::from_secs(10));
    // b and the sidecar were stopped, without the sidecar's preStop hook; the
    // infra was not; then the init container ran again and everything started.
    assert!(sim.times("hook s PreStop").is_empty());
    assert!(sim.times("signal POD SIGTERM").is_empty());
    assert_eq!(sim.starts_of("POD"), [0]);
    assert_eq!(sim.starts_of("i").len(), 2);
    assert_eq!(sim.starts_of("s").len(), 2);
    assert_eq!(sim.starts_of("a").len(), 2);
    assert_eq!(sim.starts_of("b").len(), 2);
    assert_eq!(sim.times("started").len(), 1, "up is told once");
    for c in ["i", "s", "a", "b"] {
        assert_eq!(sim.status(c).restart_count, 1, "{c}");
    }
    assert_eq!(
        sim.condition("AllContainersRestarting"),
        ("False".into(), None)
    );
    assert_eq!(sim.core.state().phase, PodPhase::Running);
    sim.stop();
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

// --- review findings ---------------------------------------------------------------------

#[test]
fn a_stop_after_an_in_place_restart_is_not_cut_short_by_the_restarts_timers() {
    let mut plan = plan(Always, 30, &[("a", App), ("b", App)]);
    restart_all_on_exit_7(&mut plan);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(7, 1000), Run::UntilSignalled])
        .script("b", &[Run::UntilSignalled, Run::IgnoresTerm])
        .begin();
    // The restart's teardown ends at once (b stops on SIGTERM); its Grace timer
    // for step 0 is due at 31 s.
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.starts_of("b").len(), 2);
    sim.stop();
    sim.run_for(Duration::from_secs(60));
    // The in-place restart killed b at once (KEP-5532's fast termination); the
    // stop at 10 s gives b its full 30 s: SIGKILL at 40 s, nothing between.
    assert_eq!(sim.times("signal b SIGKILL all"), [SEC, 40 * SEC]);
}

#[test]
fn the_active_deadline_ends_a_pod_that_is_restarting_in_place() {
    let mut plan = plan(Always, 30, &[("a", App), ("b", App)]);
    plan.active_deadline_seconds = Some(5);
    restart_all_on_exit_7(&mut plan);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(7, 4000)])
        // Even SIGKILL does not end b: the restart's teardown lasts until it is
        // deleted anyway, 2 s later, past the deadline.
        .script("b", &[Run::Unkillable])
        .begin();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(
        sim.outcome,
        Some(Outcome::Failed(
            "Pod was active on the node longer than the specified deadline".into()
        ))
    );
    assert_eq!(sim.core.state().reason.as_deref(), Some("DeadlineExceeded"));
    assert_eq!(sim.starts_of("a"), [0], "no restart after the deadline");
}

#[test]
fn a_probe_run_that_never_answers_is_given_up_and_the_probe_goes_on() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", readiness(probe(0, 1, 1, 1)))],
    )
    // The first run's answer never comes (an hour), the next ones at once.
    .script_probe("a", ProbeKind::Readiness, &[(true, 3_600_000), (true, 0)])
    .begin();
    sim.run_for(Duration::from_secs(20));
    let runs = sim.probes_of("a", ProbeKind::Readiness);
    // Given up 1 s (timeout) + 10 s after it began; then probed every second.
    assert_eq!(runs[..3], [0, 11 * SEC, 12 * SEC]);
    assert!(sim.ready("a"));
    assert!(
        sim.core
            .state()
            .events
            .iter()
            .any(|e| e.message == "Readiness probe errored: no answer within its timeout")
    );
}

#[test]
fn a_probe_run_without_a_result_counts_for_nothing() {
    let mut sim = Sim::probed(
        Always,
        30,
        &[("a", App)],
        &[("a", liveness(probe(0, 1, 1, 1)))],
    )
    // The first run would fail, but only after 2 s: it errors before that.
    .script_probe("a", ProbeKind::Liveness, &[(false, 2000), (true, 0)])
    .begin();
    sim.run_for(Duration::from_millis(500));
    let at = sim.at();
    let run = ProbeRun {
        ctr: 1,
        kind: ProbeKind::Liveness,
        generation: 0,
        run: 1,
    };
    let c = sim.core.handle(
        Input::ProbeErrored {
            probe: run,
            message: "exec failed".into(),
        },
        at,
        &NoLogs,
    );
    sim.exec(c);
    sim.run_for(Duration::from_secs(5));
    assert!(
        sim.times("signal a SIGTERM").is_empty(),
        "an error is not a failure"
    );
    assert!(
        sim.core
            .state()
            .events
            .iter()
            .any(|e| e.message == "Liveness probe errored: exec failed")
    );
    // The next run comes a period after the errored one began; its failing
    // answer, when it comes at 2 s, belongs to a run given up and is dropped.
    assert_eq!(sim.probes_of("a", ProbeKind::Liveness)[..2], [0, SEC]);
}

#[test]
fn grace_periods_beyond_any_instant_do_not_panic() {
    let mut p = probe(0, 1, 1, 1);
    p.termination_grace_period_seconds = Some(u64::MAX / 2);
    let mut plan = plan(Always, u64::MAX / 2, &[("a", App)]);
    plan.containers[0].probes = liveness(p);
    plan.containers[0].hooks = pre_stop(Hook::Sleep {
        seconds: u64::MAX / 2,
    });
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script_probe("a", ProbeKind::Liveness, &[(false, 0)])
        .begin();
    sim.run_for(Duration::from_secs(5));
    sim.stop();
    sim.run_for(Duration::from_secs(5));
}

#[test]
fn an_in_place_restart_waits_for_the_triggers_back_off() {
    let mut plan = plan(Always, 30, &[("a", App)]);
    restart_all_on_exit_7(&mut plan);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(7, 0)])
        .begin();
    sim.run_for(Duration::from_secs(100));
    // At once, then 10 s, 20 s, 40 s later (the kubelet's back-off).
    assert_eq!(sim.starts_of("a"), [0, 0, 10 * SEC, 30 * SEC, 70 * SEC]);
    // Counted as each run ends (as a crash-looping container is, in back-off).
    assert_eq!(sim.status("a").restart_count, 5);
}

#[test]
fn a_failed_start_after_an_in_place_restart_is_retried_not_fatal() {
    let mut plan = plan(Always, 30, &[("a", App), ("b", App)]);
    restart_all_on_exit_7(&mut plan);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(7, 1000), Run::UntilSignalled])
        .script(
            "b",
            &[Run::UntilSignalled, Run::StartError, Run::UntilSignalled],
        )
        .begin();
    sim.run_for(Duration::from_secs(30));
    assert_eq!(sim.outcome, None, "the pod runs on");
    assert_eq!(sim.starts_of("b").len(), 3);
    assert_eq!(sim.core.state().phase, PodPhase::Running);
}

#[test]
fn an_infra_that_exits_during_an_in_place_restart_fails_the_pod() {
    let mut plan = plan(Always, 30, &[("a", App), ("b", App)]);
    restart_all_on_exit_7(&mut plan);
    let mut sim = Sim::with_plan(plan, Timing::default(), false)
        .script("a", &[Run::ExitAfter(7, 1000)])
        .script("b", &[Run::Unkillable])
        .begin();
    sim.run_for(Duration::from_millis(1500));
    // b outlives its SIGKILL; the infra dies before b is deleted anyway.
    sim.exit_now("POD", 1);
    sim.run_for(Duration::from_secs(30));
    assert_eq!(
        sim.outcome,
        Some(Outcome::Failed(
            "infra container exited while the pod restarted".into()
        ))
    );
    assert_eq!(sim.starts_of("a"), [0], "nothing starts without the infra");
    assert_eq!(sim.core.state().phase, PodPhase::Failed);
}

#[test]
fn a_resize_that_needs_a_restart_restarts_at_once_whatever_the_policy() {
    // UntilSignalled exits 143 on its stop signal; under Never it would not come
    // back, and under Always it would wait out a back-off.
    for policy in [Always, OnFailure, Never] {
        let mut sim = Sim::new(policy, 30, &[("a", App), ("b", App)])
            .script("a", &[Run::UntilSignalled, Run::UntilSignalled])
            .begin();
        sim.run_for(Duration::from_secs(5));
        let resources = crate::run_plan::PlanResources {
            memory_limit_bytes: Some(96 << 20),
            ..Default::default()
        };
        sim.resized(vec![None, Some(resources), None], vec![1]);
        sim.run_for(Duration::from_secs(10));
        assert_eq!(sim.times("signal a SIGTERM"), [5000], "{policy:?}");
        assert_eq!(sim.starts_of("a"), [0, 5000], "{policy:?}: no back-off");
        assert_eq!(sim.starts_of("b"), [0], "{policy:?}: only the resized one");
        assert_eq!(sim.status("a").restart_count, 1, "{policy:?}");
        assert_eq!(sim.status("a").resources, Some(resources), "{policy:?}");
        assert_eq!(sim.status("b").resources, None, "{policy:?}");
        assert!(
            sim.core.state().events.iter().any(
                |e| e.reason == "Killing" && e.message == "Container a resize requires restart"
            ),
            "{policy:?}"
        );
        // A later crash backs off as before: the resize restart left no mark.
        sim.exit_now("a", 1);
        sim.run_for(Duration::from_secs(1));
        if policy != Never {
            assert_eq!(sim.starts_of("a").len(), 3, "{policy:?}");
        }
    }
}

#[test]
fn a_resize_while_the_pod_stops_restarts_nothing() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script("a", &[Run::UntilSignalled])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.stop();
    sim.resized(vec![None, None], vec![1]);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(sim.starts_of("a"), [0]);
    assert_eq!(sim.outcome, Some(Outcome::Stopped));
}

#[test]
fn after_a_resize_restart_the_next_exit_follows_the_restart_policy_again() {
    let mut sim = Sim::new(OnFailure, 30, &[("a", App)])
        .script("a", &[Run::UntilSignalled, Run::ExitAfter(0, 1000)])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.resized(vec![None, None], vec![1]);
    sim.run_for(Duration::from_secs(5));
    // Restarted once for the resize; that run exits 0 under OnFailure: done.
    assert_eq!(sim.starts_of("a"), [0, 1000]);
    sim.run_for(Duration::from_secs(5));
    assert_eq!(sim.starts_of("a"), [0, 1000], "no second restart");
    assert!(sim.outcome.is_some(), "the pod completed");
}

#[test]
fn a_resize_of_a_container_already_being_killed_does_not_kill_it_again() {
    let mut sim = Sim::new(Always, 30, &[("a", App)])
        .script("a", &[Run::IgnoresTerm, Run::UntilSignalled])
        .begin();
    sim.run_for(Duration::from_secs(1));
    sim.resized(vec![None, None], vec![1]);
    sim.run_for(Duration::from_secs(1));
    sim.resized(vec![None, None], vec![1]);
    sim.run_for(Duration::from_secs(40));
    // One stop signal, one SIGKILL after the grace period: the second resize
    // found it being killed.
    assert_eq!(sim.times("signal a SIGTERM"), [1000]);
    assert_eq!(sim.times("signal a SIGKILL all").len(), 1);
    assert_eq!(sim.status("a").restart_count, 1);
}
