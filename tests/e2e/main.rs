//! End-to-end tests: the real `podshim` binary, a real image store, real runc.
//! One test binary (build time matters on small machines); run as root.

mod attach;
mod attacks;
mod cgroups;
mod cli;
mod cni;
mod generate;
mod hardening;
mod hooks;
mod hostile;
mod identity;
mod layers;
mod network;
mod probes;
mod pull;
mod security;
mod support;
mod up;
mod userns;
mod workloads;
