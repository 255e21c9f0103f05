//! PURE: Pod + image configs + paths → PodPlan.
