//! One configuration's results: a folder that appears whole or not at all.
//!
//! While the body runs, everything it records goes to `OUT/.running/<id>/`
//! (the part files of `summary/`, `history/`, `metrics/`, `weights/`, pictures),
//! and its checkpoints to `OUT/checkpoints/<id>/`. When the body returns, the whole
//! tables (`summary.parquet`, ...) and a `configuration.json` are added and the
//! folder is renamed to `OUT/parts/<id>/`
//! in one atomic step, so a reader globbing `OUT/parts/*/summary.parquet` sees a
//! configuration complete or not at all. The checkpoints are then deleted. A
//! killed configuration leaves only `.running/<id>` (discarded when it starts
//! again) and its checkpoints (from which it resumes).

use super::{atomic, Row, RunDir};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const PARTS: &str = "parts";
pub const RUNNING: &str = ".running";
pub const CHECKPOINTS: &str = "checkpoints";
pub const CONFIGURATION: &str = "configuration.json";
const LOCK: &str = ".parts.lock";

/// The configuration a sweep body is running: where its records go.
pub struct PartFolder {
    pub dir: RunDir,
    /// `sweep_*` columns every row recorded in the body carries.
    pub columns: Row,
    pub checkpoints: PathBuf,
}

pub fn part_path(out: &Path, id: &str) -> PathBuf {
    out.join(PARTS).join(id)
}

pub fn checkpoints_path(out: &Path, id: &str) -> PathBuf {
    out.join(CHECKPOINTS).join(id)
}

pub fn is_complete(out: &Path, id: &str) -> bool {
    part_path(out, id).is_dir()
}

/// An exclusive lock on the run folder's parts, held until dropped: processes
/// sharing a folder publish a part and count the complete ones under it, so
/// exactly one of them sees the grid become complete.
pub fn lock(out: &Path) -> Result<std::fs::File> {
    let path = out.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// Whether an earlier attempt at this configuration left checkpoints.
pub fn has_checkpoint(out: &Path, id: &str) -> bool {
    std::fs::read_dir(checkpoints_path(out, id)).is_ok_and(|mut e| e.next().is_some())
}

/// A fresh staging folder for configuration `id` (anything an earlier, killed
/// attempt left there is discarded: the body records everything again); `columns`
/// are the `sweep_*` columns its rows carry.
pub fn begin(out: &Path, id: &str, columns: Row) -> Result<PartFolder> {
    let staging = out.join(RUNNING).join(id);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    Ok(PartFolder {
        dir: RunDir::create_at(&staging)?,
        columns,
        checkpoints: checkpoints_path(out, id),
    })
}

/// Publishes the part of configuration number `index` under `OUT/parts/<id>`,
/// with `record` as its `configuration.json`, and drops its checkpoints.
pub fn commit(
    out: &Path,
    (index, id): (i64, &str),
    part: PartFolder,
    record: serde_json::Value,
) -> Result<()> {
    let staging = part.dir.path().to_path_buf();
    part.dir.write_tables()?;
    let text = serde_json::to_string_pretty(&record)?;
    atomic::write_bytes(&staging.join(CONFIGURATION), format!("{text}\n").as_bytes())?;
    let target = part_path(out, id);
    if target.exists() {
        bail!(
            "{} already exists: configuration {} was completed by another process at the same time \
             (two processes ran the same shard?)",
            target.display(),
            index
        );
    }
    let parts = out.join(PARTS);
    std::fs::create_dir_all(&parts)
        .with_context(|| format!("cannot create {}", parts.display()))?;
    std::fs::rename(&staging, &target)
        .with_context(|| format!("cannot move {} to {}", staging.display(), target.display()))?;
    if part.checkpoints.exists() {
        std::fs::remove_dir_all(&part.checkpoints)
            .with_context(|| format!("cannot remove {}", part.checkpoints.display()))?;
    }
    Ok(())
}
