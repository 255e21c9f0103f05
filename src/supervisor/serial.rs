//! One runtime verb at a time per container, as containerd's runc shim holds a
//! lock per container around its runc calls.
//!
//! The supervisor's `kill` and `delete` calls run without waiting (rule 3), so
//! without this a SIGKILL sent after the grace period and the `delete` that
//! follows the container's exit can overlap: youki 0.7's `kill` writes the
//! container's `state.json` after signalling (truncating it in place), and a
//! `delete` reading it meanwhile fails, or removes the state directory that the
//! `kill` then writes into. The container stays in the runtime, `Stopped`.

use std::collections::VecDeque;

use super::core::Ctr;

/// A verb the supervisor runs on one of its containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Kill { signal: String, all: bool },
    Delete,
}

/// Per container: whether a verb is under way, and what waits for it.
#[derive(Debug, Default)]
pub struct Serial {
    busy: Vec<bool>,
    queued: Vec<VecDeque<Op>>,
}

impl Serial {
    pub fn new(containers: usize) -> Serial {
        Serial {
            busy: vec![false; containers],
            queued: vec![VecDeque::new(); containers],
        }
    }

    /// `op` for `ctr`: returned when it may run now (the caller starts it and
    /// calls [`Serial::done`] when it ends), queued behind the verb under way
    /// otherwise.
    pub fn submit(&mut self, ctr: Ctr, op: Op) -> Option<Op> {
        if self.busy[ctr] {
            self.queued[ctr].push_back(op);
            None
        } else {
            self.busy[ctr] = true;
            Some(op)
        }
    }

    /// The verb under way for `ctr` ended; `again` is run before what waits
    /// (a delete that met a torn state file). Returns the next verb to start.
    pub fn done(&mut self, ctr: Ctr, again: Option<Op>) -> Option<Op> {
        if let Some(op) = again {
            self.queued[ctr].push_front(op);
        }
        let next = self.queued[ctr].pop_front();
        self.busy[ctr] = next.is_some();
        next
    }

    /// A verb that could not be started: the next one may run.
    pub fn not_started(&mut self, ctr: Ctr) -> Option<Op> {
        self.done(ctr, None)
    }

    /// Whether a delete of `ctr` waits in its queue.
    pub fn delete_queued(&self, ctr: Ctr) -> bool {
        self.queued[ctr].contains(&Op::Delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(signal: &str) -> Op {
        Op::Kill {
            signal: signal.into(),
            all: signal == "KILL",
        }
    }

    #[test]
    fn a_delete_after_the_exit_waits_for_the_sigkill_still_under_way() {
        let mut s = Serial::new(2);
        assert_eq!(s.submit(0, kill("KILL")), Some(kill("KILL")));
        // The container died of it and was reaped before `kill` itself ended.
        assert_eq!(s.submit(0, Op::Delete), None);
        assert!(s.delete_queued(0));
        // Another container is not held up.
        assert_eq!(s.submit(1, Op::Delete), Some(Op::Delete));
        assert_eq!(s.done(0, None), Some(Op::Delete));
        assert!(!s.delete_queued(0));
        assert_eq!(s.done(0, None), None);
        // Idle again: the next verb runs at once.
        assert_eq!(s.submit(0, kill("TERM")), Some(kill("TERM")));
    }

    #[test]
    fn verbs_run_in_the_order_they_were_asked_for() {
        let mut s = Serial::new(1);
        assert!(s.submit(0, kill("TERM")).is_some());
        assert_eq!(s.submit(0, kill("KILL")), None);
        assert_eq!(s.submit(0, Op::Delete), None);
        assert_eq!(s.done(0, None), Some(kill("KILL")));
        assert_eq!(s.done(0, None), Some(Op::Delete));
        assert_eq!(s.done(0, None), None);
    }

    #[test]
    fn a_delete_run_again_goes_before_what_waits() {
        let mut s = Serial::new(1);
        assert!(s.submit(0, Op::Delete).is_some());
        assert_eq!(s.submit(0, kill("TERM")), None);
        assert_eq!(s.done(0, Some(Op::Delete)), Some(Op::Delete));
        assert_eq!(s.done(0, None), Some(kill("TERM")));
    }

    #[test]
    fn a_verb_that_could_not_start_lets_the_next_one_run() {
        let mut s = Serial::new(1);
        assert!(s.submit(0, kill("TERM")).is_some());
        assert_eq!(s.submit(0, Op::Delete), None);
        assert_eq!(s.not_started(0), Some(Op::Delete));
        assert_eq!(s.not_started(0), None);
        assert!(s.submit(0, Op::Delete).is_some());
    }
}
