//! `podshim pull` and `podshim prune`, and the progress display pulls share
//! (also used when `up` pulls).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Global;
use crate::image::{Digest, LayerEvent, PullOptions, PullProgress};
use crate::outln;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image, as a manifest would name it (`nginx`, `quay.io/org/app:1`, `x@sha256:...`).
    pub image: String,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {}

/// Pull options for this invocation: `--registries-conf`, auth files from the
/// environment, progress on stderr unless `quiet`.
pub fn options(global: &Global, quiet: bool) -> Result<PullOptions> {
    let mut opts = PullOptions::system(global.registries_conf.as_deref())?;
    if !quiet {
        opts.progress = Some(Arc::new(Progress::new()));
    }
    Ok(opts)
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let store = global.store()?;
    let opts = options(global, args.quiet)?;
    let image = store.pull_name(&args.image, &opts)?;
    outln!("{} {}", image.name, image.manifest_digest);
    Ok(())
}

pub fn prune(_args: PruneArgs, global: &Global) -> Result<()> {
    let store = global.store()?;
    let p = store.prune()?;
    outln!(
        "removed {} blobs ({} bytes), {} unpacked layers, {} leftovers of interrupted writes, {} leases of pods gone",
        p.blobs,
        p.blob_bytes,
        p.layers,
        p.temporary,
        p.stale_leases
    );
    Ok(())
}

/// Per-layer bars (bytes, rate) on a terminal; one line per layer elsewhere.
pub struct Progress {
    bars: Option<MultiProgress>,
    layers: Mutex<HashMap<Digest, Layer>>,
}

struct Layer {
    bar: Option<ProgressBar>,
    size: u64,
    started: Instant,
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress {
            bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            layers: Mutex::new(HashMap::new()),
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl PullProgress for Progress {
    fn layer(&self, image: &str, layer: &Digest, event: LayerEvent) {
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            LayerEvent::Present { size } => match &self.bars {
                Some(m) => {
                    let _ = m.println(format!("{}: already present ({})", short(layer), mb(size)));
                }
                None => eprintln!(
                    "{image}: layer {}: already present ({})",
                    short(layer),
                    mb(size)
                ),
            },
            LayerEvent::Start { size } => {
                let bar = self.bars.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new(size));
                    if let Ok(style) = ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar.set_prefix(short(layer).to_string());
                    bar
                });
                layers.insert(
                    layer.clone(),
                    Layer {
                        bar,
                        size,
                        started: Instant::now(),
                    },
                );
            }
            LayerEvent::Bytes(n) => {
                if let Some(bar) = layers.get(layer).and_then(|l| l.bar.as_ref()) {
                    bar.inc(n);
                }
            }
            LayerEvent::Unpacking => {
                if let Some(bar) = layers.get(layer).and_then(|l| l.bar.as_ref()) {
                    bar.set_message("unpacking");
                }
            }
            LayerEvent::Done => {
                let Some(l) = layers.remove(layer) else {
                    return;
                };
                match l.bar {
                    Some(bar) => bar.finish_with_message("done"),
                    None => {
                        let secs = l.started.elapsed().as_secs_f64();
                        eprintln!(
                            "{image}: layer {}: {} in {secs:.2}s ({}/s)",
                            short(layer),
                            mb(l.size),
                            mb((l.size as f64 / secs.max(1e-3)) as u64)
                        );
                    }
                }
            }
        }
    }
}
