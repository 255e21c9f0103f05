//! The per-pod supervisor: reaper, lifecycle, restarts with back-off, logs.

pub mod backoff;
pub mod reaper;
