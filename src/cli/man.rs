//! `podshim man DIR`: man pages from the clap definitions (one for podshim, one per
//! verb, as git and podman ship them), so they never drift from `--help`.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

pub fn write_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = super::Cli::command();
    let mut pages = vec![("podshim".to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("podshim-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, page) in pages {
        let mut text = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut text)
            .with_context(|| format!("rendering {name}.1"))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        crate::outln!("{}", path.display());
    }
    Ok(())
}
