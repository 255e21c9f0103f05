//! Container logs in the CRI format the kubelet writes
//! (`<RFC3339Nano> <stdout|stderr> <P|F> <msg>`).
