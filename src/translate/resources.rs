//! requests/limits → cgroup settings, as the kubelet computes them (pkg/kubelet/cm:
//! MilliCPUToShares, MilliCPUToQuota with a 100 ms period), plus the device cgroup.

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
    LinuxResources, LinuxResourcesBuilder,
};

use crate::model::Resources;

/// The kubelet's MilliCPUToShares range: the kernel's cpu.shares bounds
/// (MIN_SHARES, MAX_SHARES = 2^18); a request beyond it gets the most weight.
pub const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;
/// The CFS period, 100 ms (the kubelet's default `cpuCFSQuotaPeriod`).
pub const PERIOD: u64 = 100_000;
const MIN_QUOTA: u64 = 1000;
/// The largest CFS quota the kernel accepts, in microseconds (kernel/sched/core.c:
/// `max_cfs_runtime`, 2^44-1 µs). A limit above it cannot be enforced and is the
/// same as no limit; the kernel would refuse the write with EINVAL.
const MAX_QUOTA: u64 = (1 << 44) - 1;

/// The device cgroup: deny everything, then (privileged) allow everything; runc adds
/// its standard allowlist (null, zero, full, tty, random, urandom, pts, ptmx) after
/// these rules, as containerd's default spec expects.
pub fn device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool| {
        LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access("rwm")
            .build()
            .expect("device rule")
    };
    if privileged {
        vec![rule(false), rule(true)]
    } else {
        vec![rule(false)]
    }
}

/// `MilliCPUToShares`, saturating: no amount of CPU wraps into a small weight.
pub fn shares(millis: u64) -> u64 {
    (millis.saturating_mul(1024) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// `MilliCPUToQuota` with a 100 ms period. A zero limit is none (the kubelet's
/// MilliCPUToQuota(0)), and so is one above the kernel's largest quota.
pub fn quota(millis: u64) -> Option<u64> {
    if millis == 0 {
        return None;
    }
    let quota = (millis.saturating_mul(PERIOD) / 1000).max(MIN_QUOTA);
    (quota <= MAX_QUOTA).then_some(quota)
}

/// The CPU and memory part of `linux.resources` as JSON: what the runtime's
/// `update` is given and what a resize writes into config.json (nothing else:
/// a device rule given to `update` would replace the container's).
pub fn cpu_memory_json(r: &Resources) -> serde_json::Value {
    let value = serde_json::to_value(linux(r, false)).expect("resources serialize");
    let mut out = serde_json::Map::new();
    for key in ["cpu", "memory"] {
        if let Some(v) = value.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    serde_json::Value::Object(out)
}

/// Sets config.json's `linux.resources` CPU and memory to `r`'s (a resize).
pub fn set_cpu_memory(config: &mut serde_json::Value, r: &Resources) {
    let json = cpu_memory_json(r);
    let res = &mut config["linux"]["resources"];
    for key in ["cpu", "memory"] {
        match json.get(key) {
            Some(v) => res[key] = v.clone(),
            None => {
                if let Some(o) = res.as_object_mut() {
                    o.remove(key);
                }
            }
        }
    }
}

pub fn linux(r: &Resources, privileged: bool) -> LinuxResources {
    let mut res = LinuxResourcesBuilder::default().devices(device_rules(privileged));
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if let Some(request) = r.cpu_request {
        cpu = cpu.shares(shares(request.millis_u64()));
        any_cpu = true;
    }
    if let Some(quota) = r.cpu_limit.and_then(|l| quota(l.millis_u64())) {
        cpu = cpu.quota(quota as i64).period(PERIOD);
        any_cpu = true;
    }
    if any_cpu {
        res = res.cpu(cpu.build().expect("cpu"));
    }
    // A memory limit of 0 is the runtime's "unset".
    if let Some(limit) = r.memory_limit.filter(|q| !q.is_zero()) {
        res = res.memory(
            LinuxMemoryBuilder::default()
                .limit(limit.whole_i64())
                .build()
                .expect("memory"),
        );
    }
    res.build().expect("resources")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Quantity;

    fn q(s: &str) -> Option<Quantity> {
        Some(Quantity::parse(s).unwrap())
    }

    #[test]
    fn cpu_and_memory_become_shares_quota_and_limit() {
        type Row = (Resources, Option<u64>, Option<(i64, u64)>, Option<i64>);
        let rows: [Row; 7] = [
            (Resources::default(), None, None, None),
            (
                Resources {
                    cpu_request: q("250m"),
                    cpu_limit: q("500m"),
                    memory_limit: q("128Mi"),
                    ..Default::default()
                },
                Some(256),
                Some((50_000, 100_000)),
                Some(128 << 20),
            ),
            // The kubelet's minimums: 2 shares, a 1 ms quota.
            (
                Resources {
                    cpu_request: q("1m"),
                    cpu_limit: q("1m"),
                    ..Default::default()
                },
                Some(2),
                Some((1000, 100_000)),
                None,
            ),
            // The largest quantities saturate instead of wrapping: the most weight
            // the kernel takes, no quota (it could not be enforced), the largest limit.
            (
                Resources {
                    cpu_request: q("9223372036854775807"),
                    cpu_limit: q("9223372036854775807"),
                    memory_limit: q("9223372036854775807"),
                    ..Default::default()
                },
                Some(262_144),
                None,
                Some(i64::MAX),
            ),
            // 10^11 cores requested: a valid pod; runc would be refused 1.024e14 shares.
            (
                Resources {
                    cpu_request: q("1e11"),
                    cpu_limit: q("175921860"),
                    ..Default::default()
                },
                Some(262_144),
                Some((17_592_186_000_000, 100_000)),
                None,
            ),
            // Zero limits are no limits.
            (
                Resources {
                    cpu_limit: q("0"),
                    memory_limit: q("0"),
                    ..Default::default()
                },
                None,
                None,
                None,
            ),
            // A limit just above the kernel's largest quota cannot be enforced: none.
            (
                Resources {
                    cpu_request: q("256"),
                    cpu_limit: q("175921861"),
                    ..Default::default()
                },
                Some(262_144),
                None,
                None,
            ),
        ];
        for (r, shares, quota, memory) in rows {
            let l = linux(&r, false);
            let cpu = l.cpu().as_ref();
            assert_eq!(cpu.and_then(|c| c.shares()), shares, "{r:?}");
            assert_eq!(
                cpu.and_then(|c| Some((c.quota()?, c.period()?))),
                quota,
                "{r:?}"
            );
            assert_eq!(l.memory().as_ref().and_then(|m| m.limit()), memory, "{r:?}");
        }
    }

    #[test]
    fn privileged_containers_may_use_every_device() {
        assert_eq!(device_rules(false).len(), 1);
        assert_eq!(device_rules(true).len(), 2);
        assert!(device_rules(true)[1].allow());
    }
}
