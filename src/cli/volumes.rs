//! `podshim volumes` / `podshim volume rm`: the local volumes of
//! PersistentVolumeClaims, which outlive their pods.

use anyhow::Result;

use super::Global;
use crate::model::PodKey;
use crate::outln;
use crate::workload::claims;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format: `json` prints the claim records.
    #[arg(short, long, value_parser = ["json"])]
    pub output: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum VolumeCommand {
    /// Remove a claim's volume and its data (refused while a pod uses it).
    Rm {
        /// Claims (`NAME`, `NS/NAME`).
        #[arg(required = true)]
        claims: Vec<String>,
    },
}

pub fn list(args: ListArgs, global: &Global) -> Result<()> {
    let paths = global.paths();
    let volumes = claims::list(&paths.store);
    if args.output.as_deref() == Some("json") {
        let records: Vec<_> = volumes.iter().map(|v| &v.record).collect();
        outln!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    let mut rows = vec![vec![
        "CLAIM".to_string(),
        "ACCESS MODES".into(),
        "STORAGE".into(),
        "USED".into(),
        "USED BY".into(),
        "PATH".into(),
    ]];
    for v in &volumes {
        let modes: Vec<&str> = v
            .record
            .access_modes
            .iter()
            .map(|m| match m {
                crate::model::workload::AccessMode::ReadWriteOnce => "RWO",
                crate::model::workload::AccessMode::ReadOnlyMany => "ROX",
                crate::model::workload::AccessMode::ReadWriteMany => "RWX",
                crate::model::workload::AccessMode::ReadWriteOncePod => "RWOP",
            })
            .collect();
        let used = match crate::disk_usage::disk_usage(&v.data(), u64::MAX) {
            Ok(b) => human(b),
            Err(_) => "?".into(),
        };
        let users = claims::users(&paths.pods(), &v.data(), None, false);
        rows.push(vec![
            v.display(),
            modes.join(","),
            v.record.storage.clone().unwrap_or_else(|| "-".into()),
            used,
            if users.is_empty() {
                "-".into()
            } else {
                users.join(",")
            },
            v.data().display().to_string(),
        ]);
    }
    super::out::print_table(&rows);
    Ok(())
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b < 1 << 10 => format!("{b}B"),
        b if b < 1 << 20 => format!("{:.1}Ki", b as f64 / 1024.0),
        b if b < 1 << 30 => format!("{:.1}Mi", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1}Gi", b as f64 / (1u64 << 30) as f64),
    }
}

pub fn run(cmd: VolumeCommand, global: &Global) -> Result<()> {
    let paths = global.paths();
    match cmd {
        VolumeCommand::Rm { claims: names } => {
            // Every name is parsed before anything is removed.
            let keys = names
                .iter()
                .map(|n| PodKey::parse(n, global.namespace.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            for key in keys {
                let volume = claims::find(&paths.store, &key.namespace, &key.name)?;
                claims::remove(&volume, |data| {
                    claims::users(&paths.pods(), data, None, false)
                })?;
                outln!("volume {key} removed");
            }
            Ok(())
        }
    }
}
