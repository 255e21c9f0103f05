//! The pod operations, shared by every verb (ARCHITECTURE.md, "the pod core"):
//! [`prepare`] (the images, per pull policy), [`write`] (translate, lease, bundles,
//! run plan), [`start`] (under a supervisor), [`stop`] (through it, without it, or
//! with its state lost), [`list`] (what is on disk) and [`users`] (who holds an
//! image). The CLI parses, calls one of these, prints.

pub mod apply;
pub mod job;
pub mod list;
pub mod network;
pub mod prepare;
pub mod ready;
pub mod resize;
pub mod start;
pub mod stop;
pub mod users;
pub mod write;

use std::path::PathBuf;

use crate::bundle::BundleError;
use crate::image::ImageError;
use crate::manifest::ManifestError;
use crate::model::{PodKey, PodKeyError};
use crate::run_plan::PlanError;
use crate::runtime::RuntimeError;
use crate::state::StateError;
use crate::translate::TranslateError;

pub use list::{PodRecord, all_pods, log_dirs, read_pod, supervisor_alive};
pub use prepare::{DEFAULT_SECCOMP_ROOT, PodImages, prepare, seccomp_profiles};
pub use start::{Source, StartOptions, start};
pub use stop::{StopOptions, StopReport, stop};
pub use write::write;

/// Errors of the pod operations. Each names the pod, container, file or image.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Key(#[from] PodKeyError),
    #[error(transparent)]
    Translate(#[from] TranslateError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Images(String),
    #[error("pod {pod}: {}", problems.join("\n  "))]
    SeccompProfile { pod: PodKey, problems: Vec<String> },
    #[error(transparent)]
    Cdi(#[from] crate::cdi::CdiError),
    #[error(transparent)]
    Claim(#[from] crate::workload::claims::ClaimError),
    #[error("spec.hostUsers: {0}")]
    Userns(#[from] crate::userns::UsernsError),
    /// A request about a pod that cannot be carried out, with why.
    #[error("{0}")]
    Invalid(String),
    #[error("pod {0} not found (podshim ps lists pods)")]
    NotFound(PodKey),
    #[error("pod {0} already exists: `podshim down {0}` first, or `up --replace`")]
    AlreadyExists(PodKey),
    #[error(
        "pod {pod}: the runtime already has a container {id} ({holder}): it is not this pod's, so podshim leaves it alone; stop it with its owner, or use another namespace"
    )]
    IdInUse {
        pod: PodKey,
        id: String,
        holder: String,
    },
    #[error("pod {pod} failed to start: {message}")]
    StartFailed {
        pod: PodKey,
        message: String,
        kept: bool,
    },
    #[error("the supervisor of pod {pod} exited while starting it:\n{log}")]
    SupervisorCrashed { pod: PodKey, log: String },
    #[error(
        "pod {pod} did not start within {seconds} s; it is still starting (podshim ps {pod}; podshim down {pod})"
    )]
    TimedOut { pod: PodKey, seconds: u64 },
    /// `up --wait-ready`: the pod runs, but is not ready in time.
    #[error(
        "pod {pod} is not ready after {seconds} s: {why}; it keeps running (podshim ps {pod}; podshim down {pod})"
    )]
    NotReady {
        pod: PodKey,
        seconds: u64,
        why: String,
    },
    #[error("pod {pod}: containers remain after the teardown: {}", ids.join(", "))]
    ContainersRemain { pod: PodKey, ids: Vec<String> },
    #[error("output directory {} is not empty and holds no plan.json: refusing to overwrite it", .0.display())]
    ForeignOutput(PathBuf),
    #[error("output directory {} is in use: {by}; refusing to replace bundles that run", dir.display())]
    OutputInUse { dir: PathBuf, by: String },
    /// The pod's CNI network could not be found, attached or detached.
    #[error("{0}")]
    Network(String),
    /// What the manifest asks of the network is malformed (a bandwidth annotation).
    #[error("{0}")]
    NetworkInput(String),
    #[error("pod {pod}: {field}: host port {port} is in use by pod {holder}")]
    HostPortInUse {
        pod: PodKey,
        field: String,
        port: String,
        holder: String,
    },
    #[error("{path}: {action}: {err}")]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        err: std::io::Error,
    },
}

impl PodError {
    /// Bad input (exit status 2, as kubectl): the manifest, an image's config, a
    /// name on the command line.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            PodError::Manifest(ManifestError::Invalid { .. })
                | PodError::Translate(_)
                | PodError::SeccompProfile { .. }
                | PodError::Key(_)
                | PodError::NetworkInput(_)
                | PodError::Invalid(_)
        )
    }
}

pub(crate) fn io_err(
    path: &std::path::Path,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> PodError + use<> {
    let path = path.to_path_buf();
    move |err| PodError::Io { path, action, err }
}
