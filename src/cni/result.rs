//! The result of a CNI ADD (SPEC.md "Result", version 1.0.0; 0.3.x and 0.4.0 have
//! the same shape plus an `ips[].version` field, which is ignored).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// An address with its prefix length, as CNI writes them (`10.87.0.2/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = text.split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        // Digits only: `u8::from_str` would take a `+`.
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let text = String::deserialize(d)?;
        IpNet::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not an address/prefix")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// The netns path for an interface inside the container; empty on the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// An index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniResult {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

impl CniResult {
    /// Parses a plugin's result; an `ips[].interface` must index `interfaces`
    /// (SPEC.md "Result": "the index into the interfaces list").
    pub fn parse(value: &serde_json::Value) -> Result<CniResult, String> {
        let result: CniResult =
            serde_path_to_error::deserialize(value).map_err(|e| e.to_string())?;
        for (i, ip) in result.ips.iter().enumerate() {
            if let Some(n) = ip.interface
                && n >= result.interfaces.len()
            {
                return Err(format!(
                    "ips[{i}].interface: {n} is not an index of the {} interfaces",
                    result.interfaces.len()
                ));
            }
        }
        Ok(result)
    }

    /// The pod's IPs, as Kubernetes' `status.podIPs`: the addresses of `ifname`
    /// inside the sandbox, IPv4 first then IPv6 (containerd's CRI does the same:
    /// the first is `podIP`).
    pub fn pod_ips(&self, ifname: &str) -> Vec<IpAddr> {
        let on_pod = |ip: &&IpConfig| match ip.interface {
            Some(n) => {
                let i = &self.interfaces[n];
                i.name == ifname && !i.sandbox.is_empty()
            }
            // No index: the spec allows it when the result names one interface.
            None => true,
        };
        let mut v4: Vec<IpAddr> = Vec::new();
        let mut v6: Vec<IpAddr> = Vec::new();
        for ip in self.ips.iter().filter(on_pod) {
            let list = if ip.address.addr.is_ipv4() {
                &mut v4
            } else {
                &mut v6
            };
            if !list.contains(&ip.address.addr) {
                list.push(ip.address.addr);
            }
        }
        v4.extend(v6);
        v4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cidrs_parse_strictly_and_contain_their_addresses() {
        let net = IpNet::parse("10.87.0.0/24").unwrap();
        assert!(net.contains("10.87.0.200".parse().unwrap()));
        assert!(!net.contains("10.87.1.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
        assert!(
            IpNet::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "x/8",
            "10.0.0.0/",
            "::/129",
        ] {
            assert_eq!(IpNet::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn pod_ips_are_the_sandbox_interfaces_addresses_ipv4_first() {
        let result = CniResult::parse(&json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa:bb:cc:dd:ee:ff"},
                {"name": "vethx", "mac": "aa:bb:cc:dd:ee:01"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/netns/x"}
            ],
            "ips": [
                {"address": "fd00::5/64", "interface": 2},
                {"address": "10.87.0.1/24", "interface": 0},
                {"address": "10.87.0.5/24", "gateway": "10.87.0.1", "interface": 2}
            ],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {"nameservers": ["10.87.0.1"]}
        }))
        .unwrap();
        assert_eq!(
            result.pod_ips("eth0"),
            vec![
                "10.87.0.5".parse::<IpAddr>().unwrap(),
                "fd00::5".parse().unwrap()
            ]
        );
        assert_eq!(result.routes[0].dst.to_string(), "0.0.0.0/0");
        assert_eq!(result.dns.nameservers, ["10.87.0.1"]);
    }

    #[test]
    fn a_result_whose_ip_names_a_missing_interface_is_refused() {
        let err = CniResult::parse(&json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0"}],
            "ips": [{"address": "10.0.0.2/24", "interface": 1}]
        }))
        .unwrap_err();
        assert!(err.contains("ips[0].interface: 1"), "{err}");
        let err =
            CniResult::parse(&json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2"}]}))
                .unwrap_err();
        assert!(err.contains("ips[0].address"), "{err}");
    }
}
