//! PURE: a container's CDI edits applied to its spec, after the CDI library's
//! `ContainerEdits.Apply`: environment (a name already set is replaced), device
//! nodes with their device cgroup rules, mounts (one of the same destination
//! replaced, all in path-depth order), hooks, and groups (never 0).

use oci_spec::runtime::Spec;

use crate::cdi::ContainerEdits;

pub fn apply(spec: &mut Spec, edits: &ContainerEdits) {
    if let Some(process) = spec.process_mut() {
        let mut env = process.env().clone().unwrap_or_default();
        for e in &edits.env {
            let name = e.split('=').next().unwrap_or_default();
            match env.iter_mut().find(|v| v.split('=').next() == Some(name)) {
                Some(v) => v.clone_from(e),
                None => env.push(e.clone()),
            }
        }
        process.set_env(Some(env));
        if !edits.additional_gids.is_empty() {
            let mut user = process.user().clone();
            let mut gids = user.additional_gids().clone().unwrap_or_default();
            for g in &edits.additional_gids {
                if *g != 0 && !gids.contains(g) && *g != user.gid() {
                    gids.push(*g);
                }
            }
            user.set_additional_gids(Some(gids));
            process.set_user(user);
        }
    }
    if let Some(linux) = spec.linux_mut() {
        let mut devices = linux.devices().clone().unwrap_or_default();
        for d in &edits.devices {
            if !devices.iter().any(|x| x.path() == d.path()) {
                devices.push(d.clone());
            }
        }
        linux.set_devices(Some(devices));
        if let Some(resources) = linux.resources_mut() {
            let mut rules = resources.devices().clone().unwrap_or_default();
            rules.extend(edits.device_rules.iter().cloned());
            resources.set_devices(Some(rules));
        }
    }
    if !edits.mounts.is_empty() {
        // A CDI mount replaces one of the same destination; then all are in
        // path-depth order (stable), so a deeper mount stays on top of a CDI
        // mount above it, as the CDI library orders them.
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        mounts.retain(|m| {
            !edits
                .mounts
                .iter()
                .any(|e| e.destination() == m.destination())
        });
        mounts.extend(edits.mounts.iter().cloned());
        mounts.sort_by_key(|m| m.destination().components().count());
        spec.set_mounts(Some(mounts));
    }
    if !edits.hooks.is_empty() {
        let mut hooks = spec.hooks().clone().unwrap_or_default();
        for (name, hook) in &edits.hooks {
            let list = match name.as_str() {
                "prestart" => hooks.prestart_mut(),
                "createRuntime" => hooks.create_runtime_mut(),
                "createContainer" => hooks.create_container_mut(),
                "startContainer" => hooks.start_container_mut(),
                "poststart" => hooks.poststart_mut(),
                _ => hooks.poststop_mut(),
            };
            list.get_or_insert_with(Vec::new).push(hook.clone());
        }
        spec.set_hooks(Some(hooks));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{HookBuilder, ProcessBuilder, UserBuilder};

    #[test]
    fn edits_replace_a_variable_add_groups_once_and_place_hooks_by_name() {
        let mut spec = Spec::default();
        spec.set_process(Some(
            ProcessBuilder::default()
                .env(vec!["PATH=/bin".to_string(), "MODE=a".to_string()])
                .user(
                    UserBuilder::default()
                        .uid(1u32)
                        .gid(5u32)
                        .additional_gids(vec![5u32])
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        ));
        let edits = ContainerEdits {
            env: vec!["MODE=b".into(), "NEW=1".into()],
            additional_gids: vec![5, 44, 44],
            hooks: vec![(
                "createContainer".into(),
                HookBuilder::default()
                    .path("/usr/bin/hook")
                    .build()
                    .unwrap(),
            )],
            ..Default::default()
        };
        apply(&mut spec, &edits);
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.env().as_ref().unwrap(), &["PATH=/bin", "MODE=b", "NEW=1"]);
        assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[5, 44]);
        let hooks = spec.hooks().as_ref().unwrap();
        assert_eq!(hooks.create_container().as_ref().unwrap().len(), 1);
        assert!(hooks.prestart().is_none());
    }
}
