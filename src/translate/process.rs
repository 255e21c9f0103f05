//! A container's process: argv (Kubernetes' command/args vs the image's
//! ENTRYPOINT/CMD), environment (image, then the container's own) and working
//! directory.

use oci_spec::image::Config as ImageConfig;

use super::downward::{self, Facts};
use super::expand::expand;
use crate::model::{Container, EnvValue, EnvVar, FileKeyRef};
use crate::run_plan::{ArgStep, EnvStep, FileEnv, FileEnvs};

/// Kubernetes' rule (pkg/kubelet/kuberuntime, "Define a Command and Arguments for a
/// Container"): `command` replaces ENTRYPOINT and CMD; `args` alone replaces CMD and
/// keeps ENTRYPOINT; neither keeps both. The container's own arguments are the
/// ones `$(VAR)` expands (`ExpandContainerCommandAndArgs`), never the image's.
pub fn argv(
    command: Option<&[String]>,
    args: Option<&[String]>,
    image: Option<&ImageConfig>,
) -> Vec<ArgStep> {
    let image_part = |v: Option<Vec<String>>| {
        v.unwrap_or_default()
            .into_iter()
            .map(|arg| ArgStep { arg, expand: false })
    };
    let own = |v: &[String]| {
        v.iter()
            .map(|arg| ArgStep {
                arg: arg.clone(),
                expand: true,
            })
            .collect::<Vec<_>>()
    };
    let entrypoint = || image_part(image.and_then(|c| c.entrypoint().clone()));
    let cmd = || image_part(image.and_then(|c| c.cmd().clone()));
    match (command, args) {
        (Some(command), Some(args)) => [own(command), own(args)].concat(),
        (Some(command), None) => own(command),
        (None, Some(args)) => entrypoint().chain(own(args)).collect(),
        (None, None) => entrypoint().chain(cmd()).collect(),
    }
}

/// argv from its steps, the container's own arguments expanded with `vars`.
pub fn expand_argv(steps: &[ArgStep], vars: &[(String, String)]) -> Vec<String> {
    steps
        .iter()
        .map(|a| match a.expand {
            true => expand(&a.arg, &|n: &str| lookup(vars, n).cloned()),
            false => a.arg.clone(),
        })
        .collect()
}

/// The container's `env` as steps: a `value` kept to be expanded, a
/// ConfigMap's, Secret's or downward API value resolved now, a `fileKeyRef` as
/// `file` places it (none: left out).
pub fn env_steps(
    facts: &Facts<'_>,
    env: &[EnvVar],
    file: &dyn Fn(&EnvVar, &FileKeyRef) -> Option<FileEnv>,
) -> Vec<EnvStep> {
    env.iter()
        .filter_map(|var| {
            let name = var.name.clone();
            let resolved = |value: String| EnvStep::Resolved {
                name: name.clone(),
                value,
            };
            Some(match &var.value {
                EnvValue::Literal(v) => EnvStep::Value {
                    name: name.clone(),
                    value: v.clone(),
                },
                EnvValue::Data(v) => resolved(v.clone()),
                EnvValue::Field(f) => resolved(downward::field(facts, f)),
                EnvValue::Resource(r) => resolved(downward::resource(facts.host, r)),
                EnvValue::File(f) => EnvStep::File(file(var, f)?),
            })
        })
        .collect()
}

/// The value `vars` gives `name`.
fn lookup<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a String> {
    vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// The container's own variables, in order (Kubernetes' `makeEnvironmentVariables`):
/// each entry replaces an earlier one of the same name in place; a `value` is
/// `$(VAR)`-expanded with the variables defined before it, a file's among them.
/// `read` gives a `fileKeyRef` variable's value (none: an optional one missing,
/// which leaves the variable as it was).
pub fn evaluate_env<E>(
    steps: &[EnvStep],
    mut read: impl FnMut(&FileEnv) -> Result<Option<String>, E>,
) -> Result<Vec<(String, String)>, E> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for step in steps {
        let (name, value) = match step {
            EnvStep::Value { name, value } => {
                (name, expand(value, &|n: &str| lookup(&vars, n).cloned()))
            }
            EnvStep::Resolved { name, value } => (name, value.clone()),
            EnvStep::File(f) => match read(f)? {
                Some(v) => (&f.name, v),
                None => continue,
            },
        };
        match vars.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => vars.push((name.clone(), value)),
        }
    }
    Ok(vars)
}

/// Sets `name` in an environment list in place (an entry `NAME` without '='
/// is the same variable), else appends it: containerd's `WithEnv`.
pub fn set_env(env: &mut Vec<String>, name: &str, value: &str) {
    set_entry(env, format!("{name}={value}"));
}

/// Sets `entry` (`NAME=VALUE`, or a bare `NAME` as an image may give it) in
/// place of the variable of its name, else appends it.
fn set_entry(env: &mut Vec<String>, entry: String) {
    let name = entry.split('=').next().unwrap_or_default();
    let prefix = format!("{name}=");
    match env
        .iter_mut()
        .find(|e| e.starts_with(&prefix) || e.as_str() == name)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process environment as containerd's CRI builds it (`containerSpec`):
/// the default PATH, `HOSTNAME` (the pod's hostname), then the image's
/// variables, then the container's, each replacing one of the same name in
/// place (`WithEnv`).
pub fn merge_env(
    hostname: &str,
    image_env: &[String],
    container: &[(String, String)],
) -> Vec<String> {
    let mut env = vec![DEFAULT_PATH.to_string(), format!("HOSTNAME={hostname}")];
    for e in image_env {
        set_entry(&mut env, e.clone());
    }
    for (name, value) in container {
        set_env(&mut env, name, value);
    }
    env
}

/// The working directory: the container's, else the image's (when absolute), else `/`.
pub fn cwd(c: &Container, image: Option<&ImageConfig>) -> String {
    match &c.working_dir {
        Some(w) => w.to_string(),
        None => image
            .and_then(|c| c.working_dir().clone())
            .filter(|w| w.starts_with('/'))
            .unwrap_or_else(|| "/".into()),
    }
}

/// What the process runs and with which environment.
pub struct Process {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// What each start rebuilds, for a container with `fileKeyRef` variables.
    pub file_env: FileEnvs,
}

/// argv, environment and working directory of `c` over its image's config. The
/// container's own variables expand `$(VAR)` in command and args too; a
/// `fileKeyRef` variable (placed by `file`) is read at each start, so whatever
/// names it is expanded again then.
pub fn process(
    facts: &Facts<'_>,
    hostname: &str,
    c: &Container,
    image: Option<&ImageConfig>,
    file: &dyn Fn(&EnvVar, &FileKeyRef) -> Option<FileEnv>,
) -> Process {
    let steps = env_steps(facts, &c.env, file);
    let own_env = evaluate_env(&steps, |_| Ok::<_, std::convert::Infallible>(None))
        .unwrap_or_else(|e| match e {});
    let args = argv(c.command.as_deref(), c.args.as_deref(), image);
    let image_env = image.and_then(|c| c.env().clone()).unwrap_or_default();
    let file_env = match steps.iter().any(|s| matches!(s, EnvStep::File(_))) {
        true => FileEnvs {
            vars: steps,
            args: match args.iter().any(|a| a.expand) {
                true => args.clone(),
                false => Vec::new(),
            },
        },
        false => FileEnvs::default(),
    };
    Process {
        argv: expand_argv(&args, &own_env),
        env: merge_env(hostname, &image_env, &own_env),
        cwd: cwd(c, image),
        file_env,
    }
}

/// What execve(2) would refuse of the final argv and environment (the image's
/// and the pod's together): the kernel's E2BIG, named by field here instead of
/// after the runtime has tried (fs/exec.c counts each string with its NUL, and a
/// pointer for each against the total).
pub fn exec_size_issue(
    field: &str,
    p: &Process,
    limits: super::ExecLimits,
) -> Option<(String, String)> {
    use crate::image::exec_limits::{counted, first_too_long};
    if let Some((i, len)) = first_too_long(&p.argv, limits.max_string) {
        return Some((
            format!("{field}.command"),
            format!(
                "argument {i} of command and args is {len} bytes, more than the {} bytes execve accepts for one string (MAX_ARG_STRLEN)",
                limits.max_string
            ),
        ));
    }
    if let Some((i, len)) = first_too_long(&p.env, limits.max_string) {
        let name = p.env[i].split('=').next().unwrap_or_default();
        return Some((
            format!("{field}.env"),
            format!(
                "variable {name} is {len} bytes, more than the {} bytes execve accepts for one string (MAX_ARG_STRLEN)",
                limits.max_string
            ),
        ));
    }
    let total = counted(&p.argv) + counted(&p.env);
    (total > limits.total).then(|| {
        (
            field.to_string(),
            format!(
                "command, args and environment take {total} bytes (strings and pointers), more than the {} bytes execve accepts (ARG_MAX)",
                limits.total
            ),
        )
    })
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
            let steps = argv(command, args, Some(&image));
            assert_eq!(expand_argv(&steps, &[]), want, "{command:?} {args:?}");
        }
    }

    #[test]
    fn container_env_replaces_image_env_in_place() {
        let env = merge_env(
            "web",
            &s(&["A=image", "PATH=/bin", "B=image"]),
            &[("A".into(), "pod".into()), ("C".into(), "new".into())],
        );
        assert_eq!(
            env,
            s(&["PATH=/bin", "HOSTNAME=web", "A=pod", "B=image", "C=new"])
        );
    }

    #[test]
    fn every_process_has_path_and_hostname_as_containerd_gives_them() {
        assert_eq!(merge_env("web", &[], &[]), [DEFAULT_PATH, "HOSTNAME=web"]);
        // The image's and then the container's own may replace them.
        assert_eq!(
            merge_env(
                "web",
                &s(&["HOSTNAME=image"]),
                &[("HOSTNAME".into(), "mine".into())]
            ),
            [DEFAULT_PATH, "HOSTNAME=mine"]
        );
    }

    #[test]
    fn what_execve_would_refuse_is_named_by_field() {
        let limits = crate::translate::ExecLimits {
            max_string: 100,
            total: 1000,
        };
        let p = |argv: &[String], env: &[String]| Process {
            argv: argv.to_vec(),
            env: env.to_vec(),
            cwd: "/".into(),
            file_env: FileEnvs::default(),
        };
        let f = "spec.containers[0]";
        assert_eq!(
            exec_size_issue(f, &p(&s(&["sh"]), &s(&["A=1"])), limits),
            None
        );
        let long = "x".repeat(100);
        let (path, why) = exec_size_issue(f, &p(std::slice::from_ref(&long), &[]), limits).unwrap();
        assert_eq!(path, "spec.containers[0].command");
        assert!(
            why.starts_with("argument 0 of command and args is 101 bytes"),
            "{why}"
        );
        let (path, why) =
            exec_size_issue(f, &p(&s(&["sh"]), &[format!("BIG={long}")]), limits).unwrap();
        assert_eq!(path, "spec.containers[0].env");
        assert!(why.starts_with("variable BIG is 105 bytes"), "{why}");
        // 20 strings of 50 bytes: each fits, together with their pointers they do not.
        let many: Vec<String> = (0..20)
            .map(|i| format!("V{i:02}={}", "y".repeat(45)))
            .collect();
        let (path, why) = exec_size_issue(f, &p(&s(&["sh"]), &many), limits).unwrap();
        assert_eq!(path, "spec.containers[0]");
        assert!(why.contains("(ARG_MAX)"), "{why}");
    }
}
