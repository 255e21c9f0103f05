//! Retries of registry requests: which failures are worth another try, and the
//! back-off between tries. Pure: the sleeper is injected, so the schedule is
//! tested without a clock.
//!
//! containerd and containers/image retry a request that failed before or while
//! the registry answered (connection refused or reset, a 5xx, a 429), a few
//! times with a doubling delay; they never retry what the registry meant (401,
//! 403, 404: another try would get the same answer, and a wrong password would
//! be sent again).

use std::future::Future;
use std::time::Duration;

/// How many tries, and the delays between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included (at least one).
    pub attempts: u32,
    /// The delay before the second try; each later one doubles.
    pub first: Duration,
}

impl Backoff {
    /// Registry requests: 3 tries, 200 ms then 400 ms apart.
    pub const REGISTRY: Backoff = Backoff {
        attempts: 3,
        first: Duration::from_millis(200),
    };
    /// One try.
    pub const NONE: Backoff = Backoff {
        attempts: 1,
        first: Duration::ZERO,
    };

    /// The delay before try `n` (0 is the first, which has none), or `None`
    /// when `n` is past the last try.
    pub fn delay_before(&self, n: u32) -> Option<Duration> {
        match n {
            0 => Some(Duration::ZERO),
            n if n < self.attempts.max(1) => Some(self.first.saturating_mul(1 << (n - 1).min(16))),
            _ => None,
        }
    }
}

/// Whether an HTTP status is a passing trouble of the registry's (RFC 9110
/// 5xx; RFC 6585 429 Too Many Requests), not an answer.
pub fn transient_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Runs `op(try number)` until it succeeds, fails with an error `retryable`
/// refuses, or the tries run out (the last error is returned), sleeping with
/// `sleep` by the schedule in between.
pub async fn with_retries<T, E, Op, OpFut, Sleep, SleepFut>(
    backoff: Backoff,
    mut sleep: Sleep,
    retryable: impl Fn(&E) -> bool,
    mut op: Op,
) -> Result<T, E>
where
    Op: FnMut(u32) -> OpFut,
    OpFut: Future<Output = Result<T, E>>,
    Sleep: FnMut(Duration) -> SleepFut,
    SleepFut: Future<Output = ()>,
{
    let mut n = 0;
    loop {
        match op(n).await {
            Ok(v) => return Ok(v),
            Err(e) if retryable(&e) => match backoff.delay_before(n + 1) {
                Some(d) => {
                    tracing::debug!(
                        delay_ms = d.as_millis() as u64,
                        "retrying a registry request"
                    );
                    sleep(d).await;
                    n += 1;
                }
                None => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::cell::RefCell;

    /// Runs `with_retries` over a scripted sequence of results; returns the
    /// outcome, the tries made and the delays slept.
    fn run(script: &[Result<u32, u16>]) -> (Result<u32, u16>, u32, Vec<Duration>) {
        let slept = RefCell::new(Vec::new());
        let tries = RefCell::new(0);
        let out = with_retries(
            Backoff::REGISTRY,
            |d| {
                slept.borrow_mut().push(d);
                std::future::ready(())
            },
            |status: &u16| transient_status(*status),
            |n| {
                *tries.borrow_mut() += 1;
                std::future::ready(script[n as usize])
            },
        )
        .now_or_never()
        .expect("no real sleeping");
        (out, tries.into_inner(), slept.into_inner())
    }

    #[test]
    fn the_registry_schedule_is_three_tries_200ms_doubling() {
        let b = Backoff::REGISTRY;
        let delays: Vec<_> = (0..5).map(|n| b.delay_before(n)).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            delays,
            [Some(ms(0)), Some(ms(200)), Some(ms(400)), None, None]
        );
        assert_eq!(Backoff::NONE.delay_before(1), None);
    }

    #[test]
    fn a_503_then_success_sleeps_once_and_succeeds() {
        let (out, tries, slept) = run(&[Err(503), Ok(7)]);
        assert_eq!((out, tries), (Ok(7), 2));
        assert_eq!(slept, [Duration::from_millis(200)]);
    }

    #[test]
    fn persistent_5xx_and_429_give_up_after_three_tries_with_the_last_error() {
        let (out, tries, slept) = run(&[Err(503), Err(429), Err(502)]);
        assert_eq!((out, tries), (Err(502), 3));
        assert_eq!(
            slept,
            [Duration::from_millis(200), Duration::from_millis(400)]
        );
    }

    #[test]
    fn auth_and_not_found_answers_are_never_retried() {
        for status in [400, 401, 403, 404] {
            let (out, tries, slept) = run(&[Err(status), Ok(1)]);
            assert_eq!((out, tries), (Err(status), 1), "{status}");
            assert!(slept.is_empty());
        }
    }
}
