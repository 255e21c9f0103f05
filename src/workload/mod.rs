//! Workloads beyond one Pod: the names controllers give their pods
//! ([`names`]), local volumes for claims ([`claims`]).

pub mod apply;
pub mod claims;
pub mod job;
pub mod names;
