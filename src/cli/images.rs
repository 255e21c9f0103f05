//! `podshim import`, `load`, `images`, `rmi`: the local image store.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::Global;
use crate::image::{ImageRef, ImportOptions};
use crate::outln;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A root filesystem: a tar (plain, gzip or zstd) or a directory.
    pub source: PathBuf,
    /// The image name, e.g. `localhost/busybox:latest` (normalised like Kubernetes).
    pub name: String,
    /// ENTRYPOINT, one argument per flag.
    #[arg(long = "entrypoint", num_args = 1)]
    pub entrypoint: Vec<String>,
    /// CMD, one argument per flag.
    #[arg(long = "cmd", num_args = 1)]
    pub cmd: Vec<String>,
    /// An environment variable, K=V (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The working directory.
    #[arg(long)]
    pub workdir: Option<String>,
    /// The user, `uid[:gid]` or `name[:group]`.
    #[arg(long)]
    pub user: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// An OCI image layout: a directory or a tar of one.
    pub source: PathBuf,
    /// The name to give the image (else the layout's ref.name annotation).
    pub name: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print only the names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Image names.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove the name even when a pod uses the image: the pod's layers stay
    /// (its lease) until the pod is down.
    #[arg(short, long)]
    pub force: bool,
}

fn parse_ref(name: &str) -> Result<ImageRef> {
    Ok(ImageRef::parse(name)?)
}

pub fn import(args: ImportArgs, global: &Global) -> Result<()> {
    let name = parse_ref(&args.name)?;
    for kv in &args.env {
        if !kv.contains('=') {
            anyhow::bail!("--env {kv:?}: must be K=V");
        }
    }
    let opts = ImportOptions {
        entrypoint: (!args.entrypoint.is_empty()).then_some(args.entrypoint),
        cmd: (!args.cmd.is_empty()).then_some(args.cmd),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
    };
    let store = global.store()?;
    let image = store
        .import(&args.source, &name, &opts)
        .with_context(|| format!("importing {} as {name}", args.source.display()))?;
    outln!("{} {}", image.name, image.manifest_digest);
    Ok(())
}

pub fn load(args: LoadArgs, global: &Global) -> Result<()> {
    let name = args.name.as_deref().map(parse_ref).transpose()?;
    let store = global.store()?;
    let images = store
        .load(&args.source, name.as_ref())
        .with_context(|| format!("loading {}", args.source.display()))?;
    for image in images {
        outln!("{} {}", image.name, image.manifest_digest);
    }
    Ok(())
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn list(args: ListArgs, global: &Global) -> Result<()> {
    let store = global.store()?;
    let images = store.list()?;
    if args.quiet {
        for image in images {
            outln!("{}", image.name);
        }
        return Ok(());
    }
    let rows: Vec<[String; 4]> = images
        .iter()
        .map(|i| {
            let digest = i.digest.strip_prefix("sha256:").unwrap_or(&i.digest);
            [
                i.name.to_string(),
                digest.chars().take(12).collect(),
                human_size(i.size),
                i.created.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["NAME", "DIGEST", "SIZE", "CREATED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", line.join("  ").trim_end());
    }
    Ok(())
}

pub fn rmi(args: RmiArgs, global: &Global) -> Result<()> {
    let store = global.store()?;
    let mut failed = Vec::new();
    for name in &args.names {
        let removed = parse_ref(name).and_then(|r| {
            let stored = store.get(&r)?;
            let users = crate::pod::users::of_image(&store, &stored, &global.paths().root)?;
            if !users.is_empty() && !args.force {
                anyhow::bail!(
                    "image {} is used by pod {} (podshim down it first, or rmi --force)",
                    stored.name,
                    users.join(", ")
                );
            }
            Ok(store.remove(&r)?)
        });
        match removed {
            Ok(()) => outln!("removed {name}"),
            Err(e) => failed.push(format!("{name}: {}", super::out::render_error(&e))),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failed.join("\n  "))
    }
}
