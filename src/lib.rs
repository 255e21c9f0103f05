//! podshim: run a Kubernetes Pod on one Linux machine with runc.
//!
//! The data flow runs one way (see `../shared/DESIGN.md`):
//! manifest → image store → translate (pure) → bundle → runtime/supervisor.

pub mod bundle;
pub mod cli;
pub mod fsutil;
pub mod host;
pub mod howto;
pub mod image;
pub mod logs;
pub mod manifest;
pub mod model;
pub mod paths;
pub mod pause;
pub mod pod;
pub mod run_plan;
pub mod runtime;
pub mod state;
pub mod supervisor;
pub mod teardown;
#[doc(hidden)]
pub mod testing;
pub mod translate;
