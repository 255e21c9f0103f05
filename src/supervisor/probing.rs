//! PURE: one probe's worker state, as the kubelet's `prober/worker.go` keeps it
//! (`doProbe`): a result counts only after `successThreshold` (or
//! `failureThreshold`) equal results in a row, and a liveness or startup failure
//! puts the worker on hold until the container's next run.

use std::time::Instant;

use crate::model::Probe;

/// What one probe run found: `Ok` with its output (a success), `Err` with why not.
pub type ProbeResult = Result<String, String>;

#[derive(Debug, Clone, Default)]
pub struct Worker {
    /// The last raw result (success or not) and how often in a row.
    last: Option<bool>,
    run: u32,
    /// The result that counts (after the thresholds).
    pub committed: Option<bool>,
    /// A probe run is under way (it is never run twice at once).
    pub in_flight: bool,
    /// When the run under way (or the last) began: the next is a period later.
    pub launched: Option<Instant>,
    /// Stopped for this run of the container: its startup probe succeeded, or a
    /// liveness/startup failure is killing it.
    pub hold: bool,
    /// The number of the last run launched (answers of another are stale).
    pub seq: u64,
}

impl Worker {
    /// Records one result; returns the result that counts when it changes (or is
    /// confirmed again after a failure: a liveness failure acts every time its
    /// threshold is reached).
    pub fn record(&mut self, ok: bool, probe: &Probe) -> Option<bool> {
        self.in_flight = false;
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let needed = if ok {
            probe.success_threshold
        } else {
            probe.failure_threshold
        };
        if self.run < needed.max(1) {
            return None;
        }
        let changed = self.committed != Some(ok);
        self.committed = Some(ok);
        (changed || !ok).then_some(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProbeAction;

    fn probe(success: u32, failure: u32) -> Probe {
        Probe {
            action: ProbeAction::TcpSocket {
                host: None,
                port: 80,
            },
            initial_delay_seconds: 0,
            timeout_seconds: 1,
            period_seconds: 10,
            success_threshold: success,
            failure_threshold: failure,
            termination_grace_period_seconds: None,
        }
    }

    #[test]
    fn a_failure_counts_after_failure_threshold_failures_in_a_row() {
        let p = probe(1, 3);
        let mut w = Worker::default();
        assert_eq!(w.record(false, &p), None);
        assert_eq!(w.record(false, &p), None);
        // A success in between starts the count again.
        assert_eq!(w.record(true, &p), Some(true));
        assert_eq!(w.record(false, &p), None);
        assert_eq!(w.record(false, &p), None);
        assert_eq!(w.record(false, &p), Some(false));
    }

    #[test]
    fn a_success_counts_after_success_threshold_successes_in_a_row() {
        let p = probe(2, 1);
        let mut w = Worker::default();
        assert_eq!(w.record(true, &p), None);
        assert_eq!(w.record(true, &p), Some(true));
        // The same result again changes nothing.
        assert_eq!(w.record(true, &p), None);
        assert_eq!(w.record(false, &p), Some(false));
        assert_eq!(w.record(true, &p), None);
    }

    #[test]
    fn repeated_failures_past_the_threshold_act_again() {
        let p = probe(1, 1);
        let mut w = Worker::default();
        assert_eq!(w.record(false, &p), Some(false));
        assert_eq!(w.record(false, &p), Some(false));
    }
}
