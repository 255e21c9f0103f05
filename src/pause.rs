//! The infra container's pause process: a tiny static C program built by build.rs.
