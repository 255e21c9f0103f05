//! The pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, one set per pod,
//! bind-mounted into every container (as the kubelet and CRI runtimes do).

use crate::model::{DnsConfig, DnsPolicy, HostAlias};

/// `/etc/hosts` in the kubelet's managed format (pkg/kubelet/kubelet_pods.go,
/// `managedHostsFileContent`), with hostAliases appended.
/// The address a loopback-only pod's hostname resolves to (Debian's convention for
/// a host with no permanent address), and its `status.podIP` in the downward API.
pub const LOOPBACK_POD_IP: &str = "127.0.1.1";

pub fn hosts_file(
    pod_ip: Option<&str>,
    hostname: &str,
    fqdn: Option<&str>,
    aliases: &[HostAlias],
) -> String {
    let mut out = String::from("# Kubernetes-managed hosts file.\n");
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    // Without a pod IP (no pod network configured) the kubelet would write no line for
    // the hostname; podshim maps it to 127.0.1.1, Debian's convention for a host with no
    // permanent address, so that `hostname -i` and lookups of the pod's own name work.
    let ip = pod_ip.unwrap_or(LOOPBACK_POD_IP);
    match fqdn {
        Some(fqdn) => out.push_str(&format!("{ip}\t{fqdn}\t{hostname}\n")),
        None => out.push_str(&format!("{ip}\t{hostname}\n")),
    }
    out.push_str(&host_aliases(aliases));
    out
}

/// `/etc/hosts` of a hostNetwork pod: the host's file, as the kubelet does.
pub fn host_network_hosts_file(host_hosts: &str, aliases: &[HostAlias]) -> String {
    let mut out = String::from("# Kubernetes-managed hosts file (host network).\n");
    out.push_str(host_hosts);
    if !host_hosts.is_empty() && !host_hosts.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&host_aliases(aliases));
    out
}

fn host_aliases(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        out.push_str(&format!("{}\t{}\n", alias.ip, alias.hostnames.join("\t")));
    }
    out
}

/// The parsed pieces of a resolv.conf.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Resolv {
    nameservers: Vec<String>,
    searches: Vec<String>,
    options: Vec<String>,
}

fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => r.nameservers.extend(words.take(1).map(str::to_string)),
            // The last search/domain line wins (resolv.conf(5)).
            Some("search") | Some("domain") => r.searches = words.map(str::to_string).collect(),
            Some("options") => r.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    r
}

fn is_loopback_nameserver(ns: &str) -> bool {
    ns.starts_with("127.") || ns == "::1"
}

/// `/etc/resolv.conf` for `dnsPolicy` (Kubernetes: Default, ClusterFirst,
/// ClusterFirstWithHostNet, None) merged with `dnsConfig`.
///
/// podshim has no cluster DNS, so ClusterFirst behaves as the kubelet does when it is
/// started without `--cluster-dns`: it falls back to the host's configuration.
/// A pod with its own network namespace cannot reach the host's loopback resolver
/// (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.0.1), so such nameservers are
/// dropped for it, as podman does.
pub fn resolv_conf(
    policy: DnsPolicy,
    host_resolv: &str,
    dns_config: Option<&DnsConfig>,
    host_network: bool,
) -> String {
    let mut r = if policy == DnsPolicy::None {
        Resolv::default()
    } else {
        parse_resolv(host_resolv)
    };
    if !host_network {
        r.nameservers.retain(|ns| !is_loopback_nameserver(ns));
    }
    if let Some(cfg) = dns_config {
        for ns in &cfg.nameservers {
            if !r.nameservers.contains(ns) {
                r.nameservers.push(ns.clone());
            }
        }
        for s in &cfg.searches {
            if !r.searches.contains(s) {
                r.searches.push(s.clone());
            }
        }
        for (name, value) in &cfg.options {
            let rendered = match value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            let name = rendered.split(':').next().unwrap_or_default().to_string();
            // A dnsConfig option replaces the host's option of the same name.
            r.options
                .retain(|o| o.split(':').next().unwrap_or_default() != name);
            r.options.push(rendered);
        }
    }
    let mut out = String::new();
    for ns in &r.nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !r.searches.is_empty() {
        out.push_str(&format!("search {}\n", r.searches.join(" ")));
    }
    if !r.options.is_empty() {
        out.push_str(&format!("options {}\n", r.options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_has_the_kubelet_header_and_pod_line() {
        let text = hosts_file(Some("10.88.0.5"), "web", None, &[]);
        assert!(text.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.88.0.5\tweb\n"));
    }

    #[test]
    fn hosts_file_uses_fqdn_with_subdomain_and_appends_host_aliases() {
        let aliases = vec![HostAlias {
            ip: "10.1.2.3".into(),
            hostnames: vec!["foo.local".into(), "bar.local".into()],
        }];
        let text = hosts_file(
            None,
            "web",
            Some("web.sub.default.svc.cluster.local"),
            &aliases,
        );
        assert!(text.contains("127.0.1.1\tweb.sub.default.svc.cluster.local\tweb\n"));
        assert!(
            text.ends_with("\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n")
        );
    }

    #[test]
    fn host_network_hosts_file_copies_the_hosts_file_of_the_host() {
        let text = host_network_hosts_file("127.0.0.1 localhost\n10.0.0.1 box", &[]);
        assert_eq!(
            text,
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 box\n"
        );
    }

    const HOST: &str = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0 ndots:1\n";

    #[test]
    fn resolv_conf_default_policy_keeps_host_servers_but_not_loopback_ones() {
        assert_eq!(
            resolv_conf(DnsPolicy::ClusterFirst, HOST, None, false),
            "nameserver 10.0.0.2\nsearch example.com\noptions edns0 ndots:1\n"
        );
        assert_eq!(
            resolv_conf(DnsPolicy::Default, HOST, None, true),
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0 ndots:1\n"
        );
    }

    #[test]
    fn resolv_conf_merges_dns_config_and_none_policy_uses_only_it() {
        let cfg = DnsConfig {
            nameservers: vec!["10.0.0.9".into()],
            searches: vec!["svc.local".into()],
            options: vec![("ndots".into(), Some("5".into()))],
        };
        assert_eq!(
            resolv_conf(DnsPolicy::Default, HOST, Some(&cfg), false),
            "nameserver 10.0.0.2\nnameserver 10.0.0.9\nsearch example.com svc.local\noptions edns0 ndots:5\n"
        );
        assert_eq!(
            resolv_conf(DnsPolicy::None, HOST, Some(&cfg), false),
            "nameserver 10.0.0.9\nsearch svc.local\noptions ndots:5\n"
        );
    }
}
