//! The runtime's view of a container: the OCI state (runtime-spec `runtime.md`,
//! "State"), as `runc state`, `runc list --format json` and youki print it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// A container's lifecycle status (runtime-spec `runtime.md` "State"; runc adds
/// `pausing`, seen while the freezer is being applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Pausing,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Pausing => "pausing",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One container's state. Fields the runtime adds beyond these (`rootfs`,
/// `created`, `owner`, youki's `creator`, ...) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "ociVersion", default)]
    pub oci_version: String,
    pub id: String,
    /// The container's init process on the host, when it has one: runc prints
    /// `0` once the container has stopped, youki may print `null` or nothing.
    #[serde(default, deserialize_with = "pid_or_none")]
    pub pid: Option<i32>,
    pub status: Status,
    #[serde(default)]
    pub bundle: PathBuf,
    /// runc omits the field when there are none, and may print `null`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
}

fn pid_or_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    Ok(Option::<i32>::deserialize(d)?.filter(|&pid| pid > 0))
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `runc state <id>`.
pub fn parse_state(json: &[u8]) -> Result<ContainerState, serde_json::Error> {
    serde_json::from_slice(json)
}

/// `runc list --format json`: an array, or `null` when there are no containers.
pub fn parse_list(json: &[u8]) -> Result<Vec<ContainerState>, serde_json::Error> {
    Ok(serde_json::from_slice::<Option<Vec<ContainerState>>>(json)?.unwrap_or_default())
}

/// `runc ps --format json <id>`: an array of host pids, or `null` when empty.
pub fn parse_pids(json: &[u8]) -> Result<Vec<i32>, serde_json::Error> {
    Ok(serde_json::from_slice::<Option<Vec<i32>>>(json)?.unwrap_or_default())
}
