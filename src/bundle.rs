//! Writes a PodPlan to disk.
