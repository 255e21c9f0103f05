//! Who uses an image: the holders of leases on it (pods, `generate` outputs).

use super::PodError;
use crate::image::{Store, StoredImage};
use crate::run_plan;

/// The pods (`ns/name`, and where their bundles are when not in the state
/// directory) whose rootfs is made of `image`.
pub fn of_image(
    store: &Store,
    image: &StoredImage,
    root: &std::path::Path,
) -> Result<Vec<String>, PodError> {
    let mut users = Vec::new();
    for holder in store.lease_holders(&image.manifest_digest)? {
        let who = match run_plan::read(&holder) {
            Ok(plan) if holder.starts_with(root) => format!("{}/{}", plan.namespace, plan.name),
            Ok(plan) => format!(
                "{}/{} (bundles in {})",
                plan.namespace,
                plan.name,
                holder.display()
            ),
            // Being written: the pod's plan is written last.
            Err(_) => holder.display().to_string(),
        };
        users.push(who);
    }
    users.sort();
    Ok(users)
}
