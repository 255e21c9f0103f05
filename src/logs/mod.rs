//! Container logs in the CRI format the kubelet writes
//! (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>`).

mod time;

pub use time::{format_rfc3339_nano, format_rfc3339_nano_fixed, parse_rfc3339};
