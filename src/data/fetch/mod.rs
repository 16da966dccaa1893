//! `minima data fetch | list | verify`: getting the official archives, unpacking
//! them safely where loaders look, and checking what is on disk.

pub mod catalog;
pub mod download;
pub mod unpack;
pub mod verify;

use crate::data::root;
use anyhow::{bail, Result};
use catalog::{DataSet, Variant};
use std::path::{Path, PathBuf};
use verify::Presence;

/// A base URL that replaces the archives' servers (a local mirror, or a test's).
pub const MIRROR_ENV: &str = "MINIMA_DATA_MIRROR";

pub struct FetchOptions<'a> {
    /// Where to unpack (default: `root::fetch_target`).
    pub root: Option<&'a Path>,
    /// Overrides $MINIMA_DATA_MIRROR.
    pub mirror: Option<&'a str>,
    /// Keep the .tar.gz next to the data (so `verify` can re-check its md5).
    pub keep_archive: bool,
}

/// Downloads, checks and unpacks one format of a data set; returns the folder the
/// data is in. Does nothing when the files are already there and correct.
pub fn fetch(set: &DataSet, variant: &Variant, options: &FetchOptions) -> Result<PathBuf> {
    let Some(archive) = variant.archive else {
        bail!(
            "{} is not downloaded by minima: {}",
            set.name,
            set.manual.unwrap_or("see docs/DATA.md")
        );
    };
    let target = root::fetch_target(set.name, options.root);
    if presence_problems(&target, variant).is_empty() {
        eprintln!(
            "{} ({}) is already in {} and checks out",
            set.name,
            variant.format,
            target.display()
        );
        return Ok(target);
    }
    let mirror = options
        .mirror
        .map(str::to_string)
        .or_else(|| std::env::var(MIRROR_ENV).ok());
    let url = catalog::url(&archive, mirror.as_deref());
    let kept = target.join(archive.file);
    let reusable = kept.is_file()
        && archive
            .md5
            .is_none_or(|m| verify::md5_file(&kept).is_ok_and(|found| found == m));
    let path = if reusable {
        eprintln!("using the archive already in {}", kept.display());
        kept
    } else {
        download::download(&archive, &url, &target)?
    };
    eprintln!("unpacking into {}", target.display());
    unpack::unpack(&path, &target)?;
    let problems = presence_problems(&target, variant);
    if !problems.is_empty() {
        bail!(
            "unpacked {} into {}, but the files are not what {} should hold (the archive \
             is kept at {}):\n  {}",
            path.display(),
            target.display(),
            set.name,
            path.display(),
            problems.join("\n  ")
        );
    }
    if !options.keep_archive {
        std::fs::remove_file(&path).map_err(|e| {
            anyhow::anyhow!("{}: unpacked, but cannot remove it: {e}", path.display())
        })?;
    }
    eprintln!(
        "{} ({}) is ready in {}",
        set.name,
        variant.format,
        verify::location(&target, variant)
    );
    Ok(target)
}

fn presence_problems(target: &Path, variant: &Variant) -> Vec<String> {
    match verify::presence(target, variant, true) {
        Presence::Complete => Vec::new(),
        Presence::Absent => vec!["no files".into()],
        Presence::Partial(problems) => problems,
    }
}
