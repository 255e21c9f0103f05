//! The Container Device Interface (CDI, tags.cncf.io/container-device-interface):
//! how an extended resource (`nvidia.com/gpu: 1`) reaches a pod on one machine.
//! A vendor's spec under `/etc/cdi` or `/var/run/cdi` (the later directory wins
//! for a device both define, as the CDI cache orders them) names a kind
//! (`vendor.com/class`), its devices and the edits each needs: environment,
//! device nodes, mounts, hooks, groups. A container limiting `N` of a resource
//! whose name is a CDI kind gets `N` of its devices, each once per pod, in name
//! order (the allocation a device plugin would make; a plain init container's
//! are given again to the containers after it), with the spec's edits and the
//! devices', after the CDI library's rules. A spec that cannot be read, or has a
//! field podshim does not apply (`intelRdt`, `netDevices`), is skipped with a
//! warning naming it.
//!
//! The specs are the host's configuration (root-owned directories), read
//! bounded; their names are checked before they become anything; a device node
//! must be a device on the host of the spec's type, its numbers never runc's
//! negative wildcard.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Hook, HookBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, Mount, MountBuilder,
};
use serde::Deserialize;

/// The spec directories in CDI's order (later wins).
pub const DEFAULT_DIRS: &[&str] = &["/etc/cdi", "/var/run/cdi"];
/// A spec larger than this is not one.
const MAX_SPEC: u64 = 4 << 20;
/// Spec files read per directory, at most.
const MAX_SPECS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum CdiError {
    #[error("CDI spec {path}: {why}")]
    Spec { path: PathBuf, why: String },
    #[error(
        "container {container:?}: {resource}: {wanted} requested, the CDI specs give {available} device(s) of that kind"
    )]
    Insufficient {
        container: String,
        resource: String,
        wanted: u64,
        available: usize,
    },
    #[error("CDI spec {spec}: device {device}: device node {path}: {why}")]
    Node {
        spec: PathBuf,
        device: String,
        path: String,
        why: String,
    },
}

// CDI parses strictly (UnmarshalStrict): a field podshim does not apply
// (`intelRdt`, `netDevices`, a misspelling) refuses the spec, by name, rather
// than give a device without an edit it needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Edits {
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    device_nodes: Vec<DeviceNode>,
    #[serde(default)]
    mounts: Vec<SpecMount>,
    #[serde(default)]
    hooks: Vec<SpecHook>,
    #[serde(default)]
    additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeviceNode {
    path: String,
    host_path: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    major: Option<i64>,
    minor: Option<i64>,
    file_mode: Option<u32>,
    permissions: Option<String>,
    uid: Option<u32>,
    gid: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecMount {
    host_path: String,
    container_path: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    options: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecHook {
    hook_name: String,
    path: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    timeout: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SpecDevice {
    name: String,
    /// CDI's annotations: for the runtime's own use, none of podshim's.
    #[serde(default, rename = "annotations")]
    _annotations: serde::de::IgnoredAny,
    container_edits: Edits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Spec {
    cdi_version: String,
    kind: String,
    /// CDI's annotations: for the runtime's own use, none of podshim's.
    #[serde(default, rename = "annotations")]
    _annotations: serde::de::IgnoredAny,
    devices: Vec<SpecDevice>,
    #[serde(default)]
    container_edits: Edits,
}

/// One device of a kind, with the edits it needs (its spec's first).
#[derive(Debug, Clone)]
struct Device {
    spec_edits: Edits,
    edits: Edits,
    source: PathBuf,
}

/// Every device the specs define, by kind and name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    kinds: BTreeMap<String, BTreeMap<String, Device>>,
}

/// `vendor.com/class`: a DNS-like vendor and a class name (CDI's kind rules).
fn is_kind(kind: &str) -> bool {
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let label = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    vendor.contains('.') && label(vendor, b".-") && label(class, b"-_.")
}

/// A device name: letters, digits, `-`, `_`, `.`, `:` (CDI's rules).
fn is_device_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl Registry {
    /// The specs of `dirs`, in order; a directory that does not exist holds none.
    /// A spec that cannot be read is skipped and named in `warnings`, as the CDI
    /// cache records it and goes on: another vendor's broken file must not stop
    /// every pod.
    pub fn load(dirs: &[PathBuf], warnings: &mut Vec<String>) -> Registry {
        let mut reg = Registry::default();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension()
                        .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
                })
                .collect();
            files.sort();
            if files.len() > MAX_SPECS {
                warnings.push(format!(
                    "{}: more than {MAX_SPECS} CDI specs: the rest are not read",
                    dir.display()
                ));
                files.truncate(MAX_SPECS);
            }
            for path in files {
                if let Err(e) = reg.add(&path) {
                    warnings.push(format!("{e}: skipped"));
                }
            }
        }
        reg
    }

    fn add(&mut self, path: &Path) -> Result<(), CdiError> {
        let err = |why: String| CdiError::Spec {
            path: path.to_path_buf(),
            why,
        };
        // A spec may be a link (vendors install them so), as the CDI cache reads it.
        let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(err("not a regular file".into()));
        }
        let bytes = crate::fsutil::read_bounded(file, MAX_SPEC).map_err(|e| match e {
            crate::fsutil::ReadError::Io(e) => err(e.to_string()),
            crate::fsutil::ReadError::TooLarge => err(format!("larger than {MAX_SPEC} bytes")),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8".into()))?;
        // JSON is YAML: one parser reads both.
        let spec: Spec = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
        if !spec.cdi_version.starts_with("0.") && !spec.cdi_version.starts_with("1.") {
            return Err(err(format!(
                "cdiVersion {:?} is not one podshim reads",
                spec.cdi_version
            )));
        }
        if !is_kind(&spec.kind) {
            return Err(err(format!("kind {:?} is not vendor.com/class", spec.kind)));
        }
        let kind = self.kinds.entry(spec.kind.clone()).or_default();
        for d in spec.devices {
            if !is_device_name(&d.name) {
                return Err(err(format!("device name {:?} is not a CDI name", d.name)));
            }
            kind.insert(
                d.name,
                Device {
                    spec_edits: spec.container_edits.clone(),
                    edits: d.container_edits,
                    source: path.to_path_buf(),
                },
            );
        }
        Ok(())
    }

    pub fn has_kind(&self, kind: &str) -> bool {
        self.kinds.contains_key(kind)
    }
}

/// What the devices a container was given add to its spec, resolved on the host.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerEdits {
    /// The fully qualified names given (`vendor.com/class=name`).
    pub devices_given: Vec<String>,
    pub env: Vec<String>,
    pub devices: Vec<LinuxDevice>,
    pub device_rules: Vec<LinuxDeviceCgroup>,
    pub mounts: Vec<Mount>,
    /// By OCI hook name (`createRuntime`, `createContainer`, `startContainer`,
    /// `poststart`, `poststop`, `prestart`).
    pub hooks: Vec<(String, Hook)>,
    pub additional_gids: Vec<u32>,
}

impl ContainerEdits {
    fn apply(&mut self, name: &str, edits: &Edits, source: &Path) -> Result<(), CdiError> {
        let spec_err = |why: String| CdiError::Spec {
            path: source.to_path_buf(),
            why,
        };
        for e in &edits.env {
            if !e.contains('=') {
                return Err(spec_err(format!("env {e:?} is not NAME=VALUE")));
            }
            self.env.push(e.clone());
        }
        for n in &edits.device_nodes {
            let (device, rule) = node(source, name, n)?;
            // The later node of a path replaces the earlier, as CDI applies them.
            if let Some(i) = self.devices.iter().position(|d| d.path() == device.path()) {
                self.devices.remove(i);
                self.device_rules.remove(i);
            }
            self.devices.push(device);
            self.device_rules.push(rule);
        }
        for m in &edits.mounts {
            if !m.container_path.starts_with('/') || !m.host_path.starts_with('/') {
                return Err(spec_err(format!(
                    "device {name}: mount {:?} from {:?}: both paths must be absolute (a relative host path would be the bundle's)",
                    m.container_path, m.host_path
                )));
            }
            let kind = m.kind.clone().unwrap_or_else(|| "bind".into());
            let mut options = m.options.clone();
            // A bind mount is made by its `bind` option: one without it is not
            // one runc can make. Read-only unless the spec says otherwise.
            if kind == "bind" && !options.iter().any(|o| o == "bind" || o == "rbind") {
                options.insert(0, "bind".into());
            }
            if m.options.is_empty() {
                options.push("ro".into());
            }
            // The later mount of a destination replaces the earlier.
            self.mounts
                .retain(|x| x.destination() != Path::new(&m.container_path));
            self.mounts.push(
                MountBuilder::default()
                    .destination(&m.container_path)
                    .source(&m.host_path)
                    .typ(kind)
                    .options(options)
                    .build()
                    .expect("mount"),
            );
        }
        for h in &edits.hooks {
            const NAMES: &[&str] = &[
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
            ];
            if !NAMES.contains(&h.hook_name.as_str()) || !h.path.starts_with('/') {
                return Err(spec_err(format!(
                    "hook {:?} {:?}: not an OCI hook with an absolute path",
                    h.hook_name, h.path
                )));
            }
            let mut hook = HookBuilder::default().path(&h.path);
            if !h.args.is_empty() {
                hook = hook.args(h.args.clone());
            }
            if !h.env.is_empty() {
                hook = hook.env(h.env.clone());
            }
            if let Some(t) = h.timeout {
                hook = hook.timeout(t);
            }
            self.hooks
                .push((h.hook_name.clone(), hook.build().expect("hook")));
        }
        self.additional_gids.extend(&edits.additional_gids);
        Ok(())
    }
}

/// A device node of a CDI device: the host's node (its `hostPath`, else its
/// `path`), which must be a device; type and numbers from the spec, else the node.
fn node(
    spec: &Path,
    device: &str,
    n: &DeviceNode,
) -> Result<(LinuxDevice, LinuxDeviceCgroup), CdiError> {
    let host = n.host_path.as_deref().unwrap_or(&n.path);
    let err = |why: String| CdiError::Node {
        spec: spec.to_path_buf(),
        device: device.to_string(),
        path: host.to_string(),
        why,
    };
    if !n.path.starts_with('/') {
        return Err(err(format!("path {:?} must be absolute", n.path)));
    }
    let meta = std::fs::metadata(host).map_err(|e| err(e.to_string()))?;
    let ft = meta.file_type();
    let host_kind = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(err("not a device".into()));
    };
    let kind = match n.kind.as_deref() {
        None => host_kind,
        Some("c" | "u") => LinuxDeviceType::C,
        Some("b") => LinuxDeviceType::B,
        Some(other) => return Err(err(format!("type {other:?} is not c, u or b"))),
    };
    if kind != host_kind {
        return Err(err("the spec's type is not the host node's".into()));
    }
    let rdev = meta.rdev();
    let major = n.major.unwrap_or(nix::sys::stat::major(rdev) as i64);
    let minor = n.minor.unwrap_or(nix::sys::stat::minor(rdev) as i64);
    // A negative number is runc's wildcard: `major: -1` would allow every
    // device of the type (the CDI library refuses it too).
    if major < 0 || minor < 0 {
        return Err(err(format!(
            "major {major}, minor {minor}: must not be negative"
        )));
    }
    let access = n.permissions.clone().unwrap_or_else(|| "rwm".into());
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(err(format!("permissions {access:?} are not of r, w, m")));
    }
    // Mode and owner only as the spec gives them: unset, the runtime makes the
    // node 0666, which the device cgroup rule then governs (as under CDI).
    let mut dev = LinuxDeviceBuilder::default()
        .path(&n.path)
        .typ(kind)
        .major(major)
        .minor(minor)
        .build()
        .expect("device");
    dev.set_file_mode(n.file_mode);
    dev.set_uid(n.uid);
    dev.set_gid(n.gid);
    let rule = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(kind)
        .major(major)
        .minor(minor)
        .access(access)
        .build()
        .expect("device rule");
    Ok((dev, rule))
}

/// The devices each container of the pod gets, by container name: for each
/// extended resource that is a CDI kind, that many of its devices, none given
/// twice in the pod. A resource no spec names stays a cluster-only fact.
pub fn allocate(
    reg: &Registry,
    containers: &[crate::model::Container],
) -> Result<BTreeMap<String, ContainerEdits>, CdiError> {
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for c in containers {
        let mut edits = ContainerEdits::default();
        for (resource, &wanted) in &c.extended_resources {
            let Some(devices) = reg.kinds.get(resource) else {
                continue;
            };
            let from = taken.entry(resource.as_str()).or_default();
            // A plain init container runs before the others: the kubelet gives
            // its devices again to the containers after it.
            let reusable = c.kind == crate::model::ContainerKind::Init;
            let free: Vec<(&String, &Device)> = devices.iter().skip(*from).collect();
            if (free.len() as u64) < wanted {
                return Err(CdiError::Insufficient {
                    container: c.name.to_string(),
                    resource: resource.clone(),
                    wanted,
                    available: devices.len().saturating_sub(*from),
                });
            }
            let given = &free[..wanted as usize];
            if !reusable {
                *from += given.len();
            }
            for (i, (name, d)) in given.iter().enumerate() {
                let qualified = format!("{resource}={name}");
                // The spec's edits once per spec, then each device's.
                if i == 0 || given[i - 1].1.source != d.source {
                    edits.apply(&qualified, &d.spec_edits, &d.source)?;
                }
                edits.apply(&qualified, &d.edits, &d.source)?;
                edits.devices_given.push(qualified);
            }
        }
        if !edits.devices_given.is_empty() {
            out.insert(c.name.to_string(), edits);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, file: &str, text: &str) {
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn pod(limits: &str) -> Vec<crate::model::Container> {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{limits}"
        );
        crate::manifest::parse(&yaml, "t")
            .unwrap()
            .pod
            .spec
            .containers
    }

    const DONGLES: &str = r#"{"cdiVersion": "0.6.0", "kind": "example.com/dongle",
      "containerEdits": {"env": ["DONGLE_DRIVER=1"]},
      "devices": [
        {"name": "d1", "containerEdits": {"deviceNodes": [{"path": "/dev/dongle1", "hostPath": "/dev/null"}], "env": ["DONGLE=d1"]}},
        {"name": "d0", "containerEdits": {"deviceNodes": [{"path": "/dev/dongle0", "hostPath": "/dev/zero", "permissions": "rw"}],
          "mounts": [{"hostPath": "/etc/hostname", "containerPath": "/etc/dongle"}], "additionalGids": [44]}}
      ]}"#;

    #[test]
    fn devices_are_given_in_name_order_once_per_pod_with_their_edits() {
        let tmp = tempfile::tempdir().unwrap();
        spec(tmp.path(), "dongle.json", DONGLES);
        let reg = Registry::load(&[tmp.path().to_path_buf()], &mut vec![]);
        let cs = pod(concat!(
            "  - {name: a, image: x, resources: {limits: {example.com/dongle: 1, nvidia.com/gpu: 1}}}\n",
            "  - {name: b, image: x, resources: {limits: {example.com/dongle: 1}}}\n",
        ));
        let got = allocate(&reg, &cs).unwrap();
        let a = &got["a"];
        // nvidia.com/gpu has no spec here: a cluster-only fact.
        assert_eq!(a.devices_given, ["example.com/dongle=d0"]);
        assert_eq!(a.env, ["DONGLE_DRIVER=1"]);
        assert_eq!(a.devices[0].path(), Path::new("/dev/dongle0"));
        // /dev/zero is 1:5.
        assert_eq!((a.devices[0].major(), a.devices[0].minor()), (1, 5));
        assert_eq!(a.device_rules[0].access().as_deref(), Some("rw"));
        assert_eq!(a.mounts[0].destination(), Path::new("/etc/dongle"));
        assert_eq!(a.additional_gids, [44]);
        let b = &got["b"];
        assert_eq!(b.devices_given, ["example.com/dongle=d1"]);
        assert_eq!(b.env, ["DONGLE_DRIVER=1", "DONGLE=d1"]);
        // A third is more than the specs give.
        let e = allocate(
            &reg,
            &pod("  - {name: c, image: x, resources: {limits: {example.com/dongle: 3}}}\n"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "container \"c\": example.com/dongle: 3 requested, the CDI specs give 2 device(s) of that kind"
        );
    }

    #[test]
    fn the_later_directory_wins_and_bad_specs_are_named() {
        let etc = tempfile::tempdir().unwrap();
        let run = tempfile::tempdir().unwrap();
        spec(
            etc.path(),
            "a.yaml",
            "cdiVersion: 0.5.0\nkind: example.com/dongle\ndevices:\n- name: d0\n  containerEdits: {env: [FROM=etc]}\n",
        );
        spec(
            run.path(),
            "a.yaml",
            "cdiVersion: 0.5.0\nkind: example.com/dongle\ndevices:\n- name: d0\n  containerEdits: {env: [FROM=run]}\n",
        );
        let reg = Registry::load(&[etc.path().into(), run.path().into()], &mut vec![]);
        let got = allocate(
            &reg,
            &pod("  - {name: a, image: x, resources: {limits: {example.com/dongle: 1}}}\n"),
        )
        .unwrap();
        assert_eq!(got["a"].env, ["FROM=run"]);
        for (text, why) in [
            (
                "cdiVersion: 0.5.0\nkind: dongle\ndevices: []\n",
                "is not vendor.com/class",
            ),
            (
                "cdiVersion: 0.5.0\nkind: example.com/d\ndevices: [{name: '../x', containerEdits: {}}]\n",
                "is not a CDI name",
            ),
            (
                "cdiVersion: 9.0.0\nkind: example.com/d\ndevices: []\n",
                "not one podshim reads",
            ),
            (
                "cdiVersion: 0.6.0\nkind: example.com/d\ndevices: [{name: x, containerEdits: {intelRdt: {closID: a}}}]\n",
                "unknown field `intelRdt`",
            ),
        ] {
            // Skipped with a warning naming the file: the good spec beside it
            // still gives its devices.
            let dir = tempfile::tempdir().unwrap();
            spec(dir.path(), "bad.yaml", text);
            spec(dir.path(), "good.json", DONGLES);
            let mut warnings = vec![];
            let reg = Registry::load(&[dir.path().into()], &mut warnings);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].contains("bad.yaml") && warnings[0].contains(why),
                "{warnings:?}"
            );
            assert!(reg.has_kind("example.com/dongle"));
        }
        // A node that is no device is refused by name.
        let dir = tempfile::tempdir().unwrap();
        spec(
            dir.path(),
            "f.json",
            r#"{"cdiVersion":"0.6.0","kind":"example.com/f","devices":[{"name":"x","containerEdits":{"deviceNodes":[{"path":"/dev/f","hostPath":"/etc/hostname"}]}}]}"#,
        );
        let reg = Registry::load(&[dir.path().into()], &mut vec![]);
        let e = allocate(
            &reg,
            &pod("  - {name: a, image: x, resources: {limits: {example.com/f: 1}}}\n"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "CDI spec {}: device example.com/f=x: device node /etc/hostname: not a device",
                dir.path().join("f.json").display()
            )
        );
    }

    #[test]
    fn a_wildcard_device_number_or_a_relative_mount_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        spec(
            dir.path(),
            "w.json",
            r#"{"cdiVersion":"0.6.0","kind":"example.com/w","devices":[
          {"name":"any","containerEdits":{"deviceNodes":[{"path":"/dev/w","hostPath":"/dev/null","type":"c","major":-1}]}},
          {"name":"rel","containerEdits":{"mounts":[{"hostPath":"lib","containerPath":"/lib/w"}]}}]}"#,
        );
        let reg = Registry::load(&[dir.path().into()], &mut vec![]);
        let limit = |n| {
            format!("  - {{name: a, image: x, resources: {{limits: {{example.com/w: {n}}}}}}}\n")
        };
        let e = allocate(&reg, &pod(&limit(1))).unwrap_err().to_string();
        assert!(e.contains("must not be negative"), "{e}");
        let mut reg = reg;
        reg.kinds.get_mut("example.com/w").unwrap().remove("any");
        let e = allocate(&reg, &pod(&limit(1))).unwrap_err().to_string();
        assert!(e.contains("both paths must be absolute"), "{e}");
    }

    #[test]
    fn a_bind_mount_gets_its_bind_option_and_init_containers_devices_are_given_again() {
        let dir = tempfile::tempdir().unwrap();
        spec(
            dir.path(),
            "m.json",
            r#"{"cdiVersion":"0.6.0","kind":"example.com/m","devices":[
          {"name":"only","containerEdits":{"mounts":[{"hostPath":"/etc/hostname","containerPath":"/etc/m","options":["nosuid"]}]}}]}"#,
        );
        let reg = Registry::load(&[dir.path().into()], &mut vec![]);
        let got = allocate(
            &reg,
            &pod("  - {name: a, image: x, resources: {limits: {example.com/m: 1}}}\n"),
        )
        .unwrap();
        assert_eq!(
            got["a"].mounts[0].options().as_ref().unwrap(),
            &["bind", "nosuid"]
        );
        // One device: an init container and the app after it both get it.
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers: [{name: i, image: x, resources: {limits: {example.com/m: 1}}}]\n  containers: [{name: a, image: x, resources: {limits: {example.com/m: 1}}}]\n";
        let cs = crate::manifest::parse(yaml, "t")
            .unwrap()
            .pod
            .spec
            .containers;
        let got = allocate(&reg, &cs).unwrap();
        assert_eq!(got["i"].devices_given, got["a"].devices_given);
    }
}
