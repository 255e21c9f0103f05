//! podshim: run a Kubernetes Pod on one Linux machine with runc.
//!
//! The data flow runs one way (see `ARCHITECTURE.md`):
//! manifest → model → image store → translate (pure) → bundle layout (pure) and
//! write → run plan → supervisor (pure core, one event loop) → runtime.

pub mod attach;
pub mod bundle;
pub mod cdi;
pub mod cgroup;
pub mod cli;
pub mod cni;
pub mod disk_usage;
pub mod fsutil;
pub mod host;
pub mod howto;
pub mod image;
pub mod logs;
pub mod manifest;
pub mod model;
pub mod paths;
pub mod pause;
pub mod pidfd;
pub mod pod;
pub mod probe;
pub mod run_plan;
pub mod runtime;
pub mod state;
pub mod status;
pub mod supervisor;
pub mod systemd;
pub mod teardown;
#[doc(hidden)]
pub mod testing;
pub mod translate;
pub mod userns;
pub mod watch;
pub mod workload;
