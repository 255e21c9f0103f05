//! A container's process: argv (Kubernetes' command/args vs the image's
//! ENTRYPOINT/CMD), environment (image, then the container's sources), working
//! directory and user.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, ObjectFieldSelector, ResourceFieldSelector};
use oci_spec::image::Config as ImageConfig;

use super::expand::expand;
use super::quantity::Quantity;
use super::{Issues, PlanInput};

/// Kubernetes' rule (pkg/kubelet/kuberuntime, "Define a Command and Arguments for a
/// Container"): `command` replaces ENTRYPOINT and CMD; `args` alone replaces CMD and
/// keeps ENTRYPOINT; neither keeps both.
pub fn argv(
    command: Option<&[String]>,
    args: Option<&[String]>,
    image: Option<&ImageConfig>,
) -> Vec<String> {
    let entrypoint = image
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    let cmd = image.and_then(|c| c.cmd().clone()).unwrap_or_default();
    match (command, args) {
        (Some(command), Some(args)) => command.iter().chain(args).cloned().collect(),
        (Some(command), None) => command.to_vec(),
        (None, Some(args)) => entrypoint.into_iter().chain(args.iter().cloned()).collect(),
        (None, None) => entrypoint.into_iter().chain(cmd).collect(),
    }
}

/// Kubernetes' rule for env names taken from envFrom: keys that are not valid
/// environment variable names are skipped (the kubelet records an event).
fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The container's own variables in Kubernetes' order: envFrom sources, then `env`;
/// each `env` value is `$(VAR)`-expanded with the variables defined before it.
pub fn container_env(
    input: &PlanInput,
    container: &Container,
    field: &str,
    issues: &mut Issues,
) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, name: String, value: String| match vars
        .iter_mut()
        .find(|(n, _)| *n == name)
    {
        Some(slot) => slot.1 = value,
        None => vars.push((name, value)),
    };
    for (i, from) in container.env_from.iter().flatten().enumerate() {
        let prefix = from.prefix.as_deref().unwrap_or_default();
        let data = if let Some(cm) = &from.config_map_ref {
            match input.manifest.config_maps.get(&cm.name) {
                Some(map) => config_map_data(map),
                None if cm.optional == Some(true) => continue,
                None => {
                    issues.push(
                        format!("{field}.envFrom[{i}].configMapRef.name"),
                        format!("Not found: {:?}", cm.name),
                    );
                    continue;
                }
            }
        } else if let Some(secret) = &from.secret_ref {
            match input.manifest.secrets.get(&secret.name) {
                Some(s) => secret_data(s),
                None if secret.optional == Some(true) => continue,
                None => {
                    issues.push(
                        format!("{field}.envFrom[{i}].secretRef.name"),
                        format!("Not found: {:?}", secret.name),
                    );
                    continue;
                }
            }
        } else {
            continue;
        };
        for (key, value) in data {
            let name = format!("{prefix}{key}");
            if is_env_name(&name) {
                set(
                    &mut vars,
                    name,
                    String::from_utf8_lossy(&value).into_owned(),
                );
            }
        }
    }
    for (i, var) in container.env.iter().flatten().enumerate() {
        let path = format!("{field}.env[{i}]");
        if let Some(value) = env_value(input, container, var, &path, issues) {
            let lookup = |name: &str| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let value = if var.value_from.is_none() {
                expand(&value, &lookup)
            } else {
                value
            };
            set(&mut vars, var.name.clone(), value);
        }
    }
    vars
}

fn config_map_data(map: &k8s_openapi::api::core::v1::ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = map
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in map.binary_data.iter().flatten() {
        data.insert(k.clone(), v.0.clone());
    }
    data
}

/// A Secret's data, with `stringData` merged over `data` as the API server does on write.
fn secret_data(secret: &k8s_openapi::api::core::v1::Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// The data of a ConfigMap (`secret == false`) or Secret by name.
pub fn source_data(
    input: &PlanInput,
    secret: bool,
    name: &str,
) -> Option<BTreeMap<String, Vec<u8>>> {
    if secret {
        input.manifest.secrets.get(name).map(secret_data)
    } else {
        input.manifest.config_maps.get(name).map(config_map_data)
    }
}

fn env_value(
    input: &PlanInput,
    container: &Container,
    var: &EnvVar,
    path: &str,
    issues: &mut Issues,
) -> Option<String> {
    let Some(from) = &var.value_from else {
        return Some(var.value.clone().unwrap_or_default());
    };
    if let Some(field) = &from.field_ref {
        return match field_ref_value(input, field) {
            Ok(v) => Some(v),
            Err(msg) => {
                issues.push(format!("{path}.valueFrom.fieldRef.fieldPath"), msg);
                None
            }
        };
    }
    if let Some(res) = &from.resource_field_ref {
        return match resource_field_value(input, Some(container), res) {
            Ok(v) => Some(v),
            Err(msg) => {
                issues.push(format!("{path}.valueFrom.resourceFieldRef"), msg);
                None
            }
        };
    }
    let (secret, name, key, optional, sub) = if let Some(r) = &from.config_map_key_ref {
        (false, &r.name, &r.key, r.optional, "configMapKeyRef")
    } else if let Some(r) = &from.secret_key_ref {
        (true, &r.name, &r.key, r.optional, "secretKeyRef")
    } else {
        issues.push(
            format!("{path}.valueFrom"),
            "Required value: one of fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef"
                .into(),
        );
        return None;
    };
    let optional = optional == Some(true);
    match source_data(input, secret, name) {
        Some(data) => match data.get(key) {
            Some(v) => Some(String::from_utf8_lossy(v).into_owned()),
            None if optional => None,
            None => {
                issues.push(
                    format!("{path}.valueFrom.{sub}.key"),
                    format!("Not found: {key:?} in {name:?}"),
                );
                None
            }
        },
        None if optional => None,
        None => {
            issues.push(
                format!("{path}.valueFrom.{sub}.name"),
                format!("Not found: {name:?}"),
            );
            None
        }
    }
}

/// The downward API's `fieldRef` values (Kubernetes: pkg/fieldpath).
pub fn field_ref_value(input: &PlanInput, field: &ObjectFieldSelector) -> Result<String, String> {
    let meta = &input.manifest.pod.metadata;
    let spec = input.manifest.pod.spec.as_ref();
    let path = field.field_path.as_str();
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(rest.to_string())
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => input.manifest.namespace().to_string(),
        "metadata.uid" => input.manifest.uid().to_string(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| input.host.node_name.clone()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => input.pod_ip.unwrap_or_default().to_string(),
        "status.hostIP" | "status.hostIPs" => input.host.host_ip.clone(),
        "metadata.labels" => labels_file(meta.labels.as_ref()),
        "metadata.annotations" => labels_file(meta.annotations.as_ref()),
        _ => {
            if let Some(key) = subscript("metadata.labels['") {
                meta.labels
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else if let Some(key) = subscript("metadata.annotations['") {
                meta.annotations
                    .as_ref()
                    .and_then(|l| l.get(&key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                return Err(format!(
                    "Unsupported value: {path:?}: supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"metadata.labels['<KEY>']\", \"metadata.annotations['<KEY>']\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.podIP\""
                ));
            }
        }
    })
}

/// `key="value"` lines, sorted, values quoted like Go's %q: the downward API's format
/// for `metadata.labels` and `metadata.annotations` files.
pub fn labels_file(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}\n", serde_json::Value::String(v.clone())))
        .collect::<String>()
        .trim_end_matches('\n')
        .to_string()
}

/// The downward API's `resourceFieldRef` (Kubernetes: pkg/api/v1/resource,
/// ExtractContainerResourceValue): a limit that is not set reads as the node's
/// allocatable amount; values are divided by `divisor` (default 1) and rounded up.
pub fn resource_field_value(
    input: &PlanInput,
    container: Option<&Container>,
    sel: &ResourceFieldSelector,
) -> Result<String, String> {
    let container = match (&sel.container_name, container) {
        (Some(name), _) => input
            .manifest
            .pod
            .spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| &c.name == name)
            .ok_or_else(|| format!("containerName: Not found: {name:?}"))?,
        (None, Some(c)) => c,
        (None, None) => return Err("containerName: Required value".into()),
    };
    let divisor = match &sel.divisor {
        Some(d) => {
            Quantity::parse(&d.0).map_err(|e| format!("divisor: Invalid value: {:?}: {e}", d.0))?
        }
        None => Quantity::ONE,
    };
    let resources = container.resources.as_ref();
    let get = |limits: bool, name: &str| -> Option<Quantity> {
        let map = if limits {
            resources.and_then(|r| r.limits.as_ref())
        } else {
            resources.and_then(|r| r.requests.as_ref())
        };
        map.and_then(|m| m.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let node_cpu = Quantity::from_whole(input.host.cpus as u128);
    let node_mem = Quantity::from_whole(input.host.memory_bytes as u128);
    let value = match sel.resource.as_str() {
        "limits.cpu" => get(true, "cpu").unwrap_or(node_cpu),
        "limits.memory" => get(true, "memory").unwrap_or(node_mem),
        "requests.cpu" => get(false, "cpu").unwrap_or(Quantity::from_whole(0)),
        "requests.memory" => get(false, "memory").unwrap_or(Quantity::from_whole(0)),
        other => {
            return Err(format!(
                "resource: Unsupported value: {other:?}: supported values: \"limits.cpu\", \"limits.memory\", \"requests.cpu\", \"requests.memory\""
            ));
        }
    };
    value
        .div_ceil(&divisor)
        .map(|v| v.to_string())
        .ok_or_else(|| "divisor: Invalid value: must be greater than zero".to_string())
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process environment: the image's variables, then the container's, a
/// container variable replacing the image's of the same name in place (containerd's
/// `WithEnv` rule).
pub fn merge_env(image_env: &[String], container: &[(String, String)]) -> Vec<String> {
    let mut env: Vec<String> = image_env.to_vec();
    // containerd and docker give a process without PATH the default one.
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    for (name, value) in container {
        let entry = format!("{name}={value}");
        let prefix = format!("{name}=");
        match env
            .iter_mut()
            .find(|e| e.starts_with(&prefix) || *e == name)
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }
    env
}

/// The user a process runs as, from securityContext (container over pod) or the
/// image's `User` (`uid`, `uid:gid`, `name`, `name:group`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum UserSpec {
    Numeric {
        uid: u32,
        gid: Option<u32>,
    },
    /// A name to resolve against the image's /etc/passwd and /etc/group once the
    /// rootfs exists (containerd's `WithUser` does the same).
    Named {
        user: String,
        group: Option<String>,
    },
}

fn parse_id(text: &str, what: &str) -> Result<Option<u32>, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        // 2^32-1 is (uid_t)-1, "no change", and never a valid id.
        Ok(id) if id != u32::MAX => Ok(Some(id)),
        _ => Err(format!(
            "Invalid value: {text:?}: {what} must be between 0 and 4294967294"
        )),
    }
}

pub fn image_user(user: &str) -> Result<UserSpec, String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if u.is_empty() {
        return Ok(UserSpec::Numeric { uid: 0, gid: None });
    }
    let uid = parse_id(u, "uid")?;
    let gid = match g {
        Some(g) => parse_id(g, "gid")?,
        None => None,
    };
    Ok(match (uid, gid, g) {
        (Some(uid), gid, None) => UserSpec::Numeric { uid, gid },
        (Some(uid), Some(gid), Some(_)) => UserSpec::Numeric {
            uid,
            gid: Some(gid),
        },
        (_, _, g) => UserSpec::Named {
            user: u.to_string(),
            group: g.map(str::to_string),
        },
    })
}

/// A securityContext id (an int64 in the API) as a Linux id.
pub fn context_id(id: i64, what: &str) -> Result<u32, String> {
    if (0..u32::MAX as i64).contains(&id) {
        Ok(id as u32)
    } else {
        Err(format!(
            "Invalid value: {id}: {what} must be between 0 and 4294967294"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::ConfigBuilder;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_and_args_follow_the_four_kubernetes_cases() {
        let image = ConfigBuilder::default()
            .entrypoint(s(&["/entry"]))
            .cmd(s(&["--default"]))
            .build()
            .unwrap();
        let cmd = s(&["/bin/app"]);
        let args = s(&["--flag"]);
        type Case<'a> = (Option<&'a [String]>, Option<&'a [String]>, Vec<String>);
        let cases: [Case; 4] = [
            (None, None, s(&["/entry", "--default"])),
            (Some(&cmd), None, s(&["/bin/app"])),
            (None, Some(&args), s(&["/entry", "--flag"])),
            (Some(&cmd), Some(&args), s(&["/bin/app", "--flag"])),
        ];
        for (command, args, want) in cases {
            assert_eq!(
                argv(command, args, Some(&image)),
                want,
                "{command:?} {args:?}"
            );
        }
    }

    #[test]
    fn container_env_replaces_image_env_in_place() {
        let env = merge_env(
            &s(&["PATH=/bin", "A=image", "B=image"]),
            &[("A".into(), "pod".into()), ("C".into(), "new".into())],
        );
        assert_eq!(env, s(&["PATH=/bin", "A=pod", "B=image", "C=new"]));
    }

    #[test]
    fn image_user_forms_parse() {
        assert_eq!(
            image_user("").unwrap(),
            UserSpec::Numeric { uid: 0, gid: None }
        );
        assert_eq!(
            image_user("1000").unwrap(),
            UserSpec::Numeric {
                uid: 1000,
                gid: None
            }
        );
        assert_eq!(
            image_user("1000:50").unwrap(),
            UserSpec::Numeric {
                uid: 1000,
                gid: Some(50)
            }
        );
        assert_eq!(
            image_user("nobody").unwrap(),
            UserSpec::Named {
                user: "nobody".into(),
                group: None
            }
        );
        assert_eq!(
            image_user("1000:staff").unwrap(),
            UserSpec::Named {
                user: "1000".into(),
                group: Some("staff".into())
            }
        );
    }

    #[test]
    fn out_of_range_numeric_ids_are_errors() {
        assert!(
            image_user("4294967296")
                .unwrap_err()
                .contains("uid must be between")
        );
        assert!(
            image_user("1:4294967295")
                .unwrap_err()
                .contains("gid must be between")
        );
        assert!(context_id(-1, "runAsUser").is_err());
        assert_eq!(context_id(65534, "runAsUser"), Ok(65534));
    }

    #[test]
    fn labels_file_quotes_values_and_sorts_keys() {
        let map: BTreeMap<String, String> = [
            ("b".to_string(), "two \"q\"".to_string()),
            ("a".into(), "1".into()),
        ]
        .into();
        assert_eq!(labels_file(Some(&map)), "a=\"1\"\nb=\"two \\\"q\\\"\"");
    }
}
