//! The kubelet's crash-loop back-off, per container.
//!
//! client-go's `flowcontrol.Backoff` as the kubelet uses it
//! (pkg/kubelet/kuberuntime/kuberuntime_manager.go, `doBackOff`; 10 s initial,
//! 300 s maximum): the first restart after a crash is immediate and arms a 10 s
//! back-off; each later restart waits the current back-off counted from the moment
//! the container finished, then doubles it up to 300 s. When a container finishes more
//! than twice the maximum (10 minutes) after its last restart, the back-off resets.

use std::time::{Duration, Instant};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    /// Current back-off and when it was last updated (the last restart).
    entry: Option<(Duration, Instant)>,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            entry: None,
        }
    }

    /// The kubelet's values.
    pub fn kubelet() -> Backoff {
        Backoff::new(INITIAL, MAX)
    }

    fn expired(&self, finished: Instant, last_update: Instant) -> bool {
        finished.saturating_duration_since(last_update) > self.max * 2
    }

    /// How long to wait, from `now`, before restarting a container that finished at
    /// `finished`.
    pub fn delay(&self, finished: Instant, now: Instant) -> Duration {
        match self.entry {
            Some((backoff, last)) if !self.expired(finished, last) => {
                backoff.saturating_sub(now.saturating_duration_since(finished))
            }
            _ => Duration::ZERO,
        }
    }

    /// Records a restart at `now` of a container that finished at `finished`.
    pub fn restarted(&mut self, finished: Instant, now: Instant) {
        let backoff = match self.entry {
            Some((backoff, last)) if !self.expired(finished, last) => (backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entry = Some((backoff, now));
    }

    /// The back-off the next crash would wait (for status messages).
    pub fn current(&self) -> Duration {
        self.entry.map(|(b, _)| b).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// Simulates a container that crashes `run` after each start: the waits between
    /// a crash and the next start.
    fn waits(run: Duration, crashes: usize) -> Vec<u64> {
        let mut b = Backoff::kubelet();
        let mut now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..crashes {
            now += run; // it runs, then crashes
            let finished = now;
            let wait = b.delay(finished, now);
            out.push(wait.as_secs());
            now += wait;
            b.restarted(finished, now);
        }
        out
    }

    #[test]
    fn crash_loop_waits_double_from_ten_seconds_up_to_five_minutes() {
        assert_eq!(waits(S(1), 8), [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn back_off_resets_after_ten_minutes_of_running() {
        let mut b = Backoff::kubelet();
        let t0 = Instant::now();
        b.restarted(t0, t0);
        b.restarted(t0 + S(1), t0 + S(10));
        assert_eq!(b.current(), S(20));
        // Ran 601 s after the last restart: the next crash restarts at once.
        let finished = t0 + S(10) + S(601);
        assert_eq!(b.delay(finished, finished), Duration::ZERO);
        b.restarted(finished, finished);
        assert_eq!(b.current(), S(10));
    }

    #[test]
    fn time_already_waited_counts() {
        let mut b = Backoff::kubelet();
        let t0 = Instant::now();
        b.restarted(t0, t0);
        let finished = t0 + S(2);
        assert_eq!(b.delay(finished, finished + S(4)), S(6));
        assert_eq!(b.delay(finished, finished + S(15)), Duration::ZERO);
    }
}
