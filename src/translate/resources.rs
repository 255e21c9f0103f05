//! requests/limits → cgroup settings, as the kubelet computes them (pkg/kubelet/cm:
//! MilliCPUToShares, MilliCPUToQuota with a 100 ms period), plus the device cgroup.

use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder,
    LinuxResources, LinuxResourcesBuilder,
};

use crate::model::Resources;

const MIN_SHARES: u64 = 2;
const PERIOD: u64 = 100_000;
const MIN_QUOTA: u64 = 1000;

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

pub fn linux(r: &Resources, privileged: bool) -> LinuxResources {
    let mut res = LinuxResourcesBuilder::default().devices(device_rules(privileged));
    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if let Some(request) = r.cpu_request {
        // Saturating: no amount of CPU wraps into a small weight.
        let shares = request.millis_u64().saturating_mul(1024) / 1000;
        let shares = shares.max(MIN_SHARES);
        cpu = cpu.shares(shares);
        any_cpu = true;
    }
    if let Some(limit) = r.cpu_limit {
        let quota = (limit.millis_u64().saturating_mul(PERIOD) / 1000).max(MIN_QUOTA);
        cpu = cpu
            .quota(i64::try_from(quota).unwrap_or(i64::MAX))
            .period(PERIOD);
        any_cpu = true;
    }
    if any_cpu {
        res = res.cpu(cpu.build().expect("cpu"));
    }
    if let Some(limit) = r.memory_limit {
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
        let rows: [Row; 4] = [
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
            // The largest quantities saturate instead of wrapping.
            (
                Resources {
                    cpu_request: q("9223372036854775807"),
                    memory_limit: q("9223372036854775807"),
                    ..Default::default()
                },
                Some(u64::MAX / 1000),
                None,
                Some(i64::MAX),
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
