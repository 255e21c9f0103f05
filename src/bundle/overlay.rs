//! What podshim knows about overlayfs's options and limits (pure): the checks
//! [`super::layout`] makes so that a rootfs can be mounted at all, and the
//! reading back of [`SetupStep::overlay_options`] into its directories for the
//! new mount API, which takes one layer per `fsconfig(2)` call.
//!
//! The limits (Documentation/filesystems/overlayfs.rst, fs/overlayfs/params.c):
//! - mount(2) copies at most one page of option data (fs/namespace.c,
//!   `copy_mount_options`), so `lowerdir=a:b:...` with the store's absolute layer
//!   paths (~100 bytes each) fails beyond ~40 layers;
//! - the new mount API has no such total: since Linux 6.8 overlayfs takes
//!   `lowerdir+` once per layer, but each `fsconfig(FSCONFIG_SET_STRING)` value
//!   is copied with `strndup_user(value, 256)` (fs/fsopen.c);
//! - overlayfs stacks at most `OVL_MAX_STACK` (500) lower layers, either way.

use std::path::{Path, PathBuf};

use crate::run_plan::SetupStep;

/// mount(2)'s option data: one page, its terminating NUL included.
pub const MOUNT_DATA_MAX: usize = 4095;

/// The longest string value fsconfig(2) copies (`strndup_user(value, 256)`).
pub const FSCONFIG_STRING_MAX: usize = 255;

/// overlayfs's `OVL_MAX_STACK`: the most lower layers one overlay can have.
pub const MAX_LOWER_LAYERS: usize = 500;

/// Characters with a meaning in overlayfs's option syntax: ',' separates
/// options, ':' lower layers, '\\' escapes either (`ovl_next_opt`,
/// `ovl_unescape`). podshim writes no escapes: a path holding one of these
/// (a `--store` or `-o` directory can) is refused when the plan is laid out,
/// so the options string is always read back into the same directories.
pub const OPTION_SYNTAX: [char; 3] = [',', ':', '\\'];

/// Why a layer, upper or work directory cannot be named in overlay options.
pub fn unnameable(path: &Path) -> Option<&'static str> {
    match path.to_str() {
        None => Some("is not UTF-8"),
        Some(p) if p.contains(OPTION_SYNTAX) => Some(
            "holds ',', ':' or '\\', which overlayfs's mount options read as separators or escapes",
        ),
        Some(p) if !p.starts_with('/') => Some("is not absolute"),
        Some(_) => None,
    }
}

/// An overlay's directories as [`SetupStep::overlay_options`] wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayDirs {
    /// The lower layers, topmost first (the order of `lowerdir=` and of
    /// successive `lowerdir+`).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverlayOptionsError {
    #[error("overlay options: {0:?} is not key=value")]
    NotKeyValue(String),
    #[error(
        "overlay options: unknown option {0:?} (podshim writes lowerdir, upperdir and workdir only)"
    )]
    Unknown(String),
    #[error("overlay options: {0} is given twice")]
    Twice(&'static str),
    #[error("overlay options: {0} is missing")]
    Missing(&'static str),
    #[error("overlay options: {what} {path:?} {why}")]
    Path {
        what: &'static str,
        path: String,
        why: &'static str,
    },
}

impl OverlayDirs {
    /// Reads `lowerdir=..,upperdir=..,workdir=..` back. Anything podshim does not
    /// write (escapes, other options, relative or empty paths) is refused rather
    /// than guessed at: the string is split exactly as the kernel would split it
    /// only because no path may hold a separator ([`unnameable`]).
    pub fn parse(options: &str) -> Result<OverlayDirs, OverlayOptionsError> {
        let (mut lower, mut upper, mut work) = (None, None, None);
        for option in options.split(',') {
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| OverlayOptionsError::NotKeyValue(option.to_string()))?;
            let (slot, name) = match key {
                "lowerdir" => (&mut lower, "lowerdir"),
                "upperdir" => (&mut upper, "upperdir"),
                "workdir" => (&mut work, "workdir"),
                _ => return Err(OverlayOptionsError::Unknown(key.to_string())),
            };
            if slot.replace(value).is_some() {
                return Err(OverlayOptionsError::Twice(name));
            }
        }
        let path = |what: &'static str, p: &str| -> Result<PathBuf, OverlayOptionsError> {
            let path = PathBuf::from(p);
            let why = if p.is_empty() {
                Some("is empty")
            } else {
                unnameable(&path)
            };
            match why {
                Some(why) => Err(OverlayOptionsError::Path {
                    what,
                    path: p.to_string(),
                    why,
                }),
                None => Ok(path),
            }
        };
        let lower = lower.ok_or(OverlayOptionsError::Missing("lowerdir"))?;
        Ok(OverlayDirs {
            lower: lower
                .split(':')
                .map(|l| path("lower layer", l))
                .collect::<Result<_, _>>()?,
            upper: path(
                "upperdir",
                upper.ok_or(OverlayOptionsError::Missing("upperdir"))?,
            )?,
            work: path(
                "workdir",
                work.ok_or(OverlayOptionsError::Missing("workdir"))?,
            )?,
        })
    }
}

/// Why a rootfs overlay of `lower` (lowest first), `upper` and `work` could not be
/// mounted by any of podshim's ways, if it could not: too many layers for
/// overlayfs, or a path the options cannot name. Long options are not a reason:
/// the mounter passes layers one by one ([`super::SystemMounter`]) and `run.sh`
/// by short links (`howto`).
pub fn check(lower: &[PathBuf], upper: &Path, work: &Path) -> Result<(), OverlayRefusal> {
    if lower.len() > MAX_LOWER_LAYERS {
        return Err(OverlayRefusal::TooManyLayers(lower.len()));
    }
    for p in lower.iter().map(PathBuf::as_path).chain([upper, work]) {
        if let Some(why) = unnameable(p) {
            return Err(OverlayRefusal::Path(p.to_path_buf(), why));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayRefusal {
    TooManyLayers(usize),
    Path(PathBuf, &'static str),
}

/// The options of an overlay mounted from a directory of links named `0`, `1`,
/// ... (lowest layer first) with that directory as the working directory:
/// relative lower layers, as Docker's overlay2 `l/` links and containerd's
/// `mountAt` do, so that up to [`MAX_LOWER_LAYERS`] layers fit mount(2)'s page.
/// `None` when even these exceed it (a very long upper or work path).
pub fn short_link_options(layers: usize, upper: &Path, work: &Path) -> Option<String> {
    let lower: Vec<String> = (0..layers).rev().map(|i| i.to_string()).collect();
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    (options.len() <= MOUNT_DATA_MAX).then_some(options)
}

/// Whether [`SetupStep::overlay_options`] of these fit one mount(2).
pub fn fits_one_page(lower: &[PathBuf], upper: &Path, work: &Path) -> bool {
    SetupStep::overlay_options(lower, upper, work).len() <= MOUNT_DATA_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| PathBuf::from(format!("/var/lib/podshim/layers/{:064x}", i)))
            .collect()
    }

    #[test]
    fn options_of_128_layers_read_back_as_the_same_directories_top_first() {
        let lower = layers(128);
        let (upper, work) = (Path::new("/run/p/b/upper"), Path::new("/run/p/b/work"));
        let options = SetupStep::overlay_options(&lower, upper, work);
        assert!(options.len() > MOUNT_DATA_MAX, "the case this is for");
        let dirs = OverlayDirs::parse(&options).unwrap();
        let mut top_first = lower.clone();
        top_first.reverse();
        assert_eq!(dirs.lower, top_first);
        assert_eq!((dirs.upper.as_path(), dirs.work.as_path()), (upper, work));
    }

    #[test]
    fn options_podshim_never_writes_are_refused_not_guessed_at() {
        use OverlayOptionsError as E;
        let ok = "lowerdir=/l,upperdir=/u,workdir=/w";
        assert!(OverlayDirs::parse(ok).is_ok());
        for (options, want) in [
            (
                "lowerdir=/l,upperdir=/u,workdir=/w,index=on",
                E::Unknown("index".into()),
            ),
            (
                "lowerdir=/l,lowerdir=/m,upperdir=/u,workdir=/w",
                E::Twice("lowerdir"),
            ),
            ("lowerdir=/l,upperdir=/u", E::Missing("workdir")),
            ("lowerdir=/l,/u,workdir=/w", E::NotKeyValue("/u".into())),
        ] {
            assert_eq!(OverlayDirs::parse(options), Err(want), "{options}");
        }
        for options in [
            r"lowerdir=/a\:b,upperdir=/u,workdir=/w",
            "lowerdir=/l::/m,upperdir=/u,workdir=/w",
            "lowerdir=l,upperdir=/u,workdir=/w",
            "lowerdir=/l,upperdir=,workdir=/w",
        ] {
            assert!(
                matches!(OverlayDirs::parse(options), Err(E::Path { .. })),
                "{options}"
            );
        }
    }

    #[test]
    fn paths_with_option_syntax_and_more_layers_than_overlayfs_stacks_are_refused() {
        let (upper, work) = (Path::new("/b/upper"), Path::new("/b/work"));
        assert_eq!(check(&layers(MAX_LOWER_LAYERS), upper, work), Ok(()));
        assert_eq!(
            check(&layers(MAX_LOWER_LAYERS + 1), upper, work),
            Err(OverlayRefusal::TooManyLayers(501))
        );
        for bad in [
            "/store,x/layers/1",
            "/store:x/layers/1",
            r"/store\x/layers/1",
        ] {
            let lower = vec![PathBuf::from(bad)];
            assert!(
                matches!(check(&lower, upper, work), Err(OverlayRefusal::Path(p, _)) if p == Path::new(bad)),
                "{bad}"
            );
        }
        assert!(check(&layers(1), Path::new("/o,p/upper"), work).is_err());
    }

    #[test]
    fn short_links_fit_the_most_layers_overlayfs_stacks_into_one_page() {
        let (upper, work) = (
            Path::new("/tmp/out/bundles/c/upper"),
            Path::new("/tmp/out/bundles/c/work"),
        );
        let options = short_link_options(3, upper, work).unwrap();
        assert_eq!(
            options,
            "lowerdir=2:1:0,upperdir=/tmp/out/bundles/c/upper,workdir=/tmp/out/bundles/c/work"
        );
        assert!(short_link_options(MAX_LOWER_LAYERS, upper, work).is_some());
        let long = PathBuf::from(format!("/{}", "d".repeat(3000)));
        assert_eq!(short_link_options(MAX_LOWER_LAYERS, &long, work), None);
    }
}
