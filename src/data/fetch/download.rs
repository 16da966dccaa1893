//! Downloads one archive into `<file>.part`, resuming with an HTTP Range request
//! after a dropped connection (in this run or an earlier one), and renames it to
//! `<file>` only once its size and md5 are right.

use super::catalog::Archive;
use super::verify::md5_file;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::OpenOptions;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tries per run; each one resumes where the last stopped.
const ATTEMPTS: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        // A stalled transfer counts as dropped (and is resumed), not as slow.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("minima/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::no_length();
    let style = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} [{elapsed_precise} < {eta}]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Why one try stopped: `Retry` keeps what arrived and asks again from there.
enum Stop {
    Retry(anyhow::Error),
    Fail(anyhow::Error),
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header.
fn range_start(header: &str) -> Option<u64> {
    let range = header.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// One GET from the `.part` file's current length to the end (or a failure).
fn attempt(agent: &ureq::Agent, url: &str, part: &Path, bar: &ProgressBar) -> Result<(), Stop> {
    let have = std::fs::metadata(part).map_or(0, |m| m.len());
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part holds the whole file already; the checksum decides.
        Err(ureq::Error::StatusCode(416)) if have > 0 => return Ok(()),
        Err(ureq::Error::StatusCode(code)) if code >= 500 => {
            return Err(Stop::Retry(anyhow::anyhow!("GET {url}: HTTP {code}")))
        }
        Err(ureq::Error::StatusCode(code)) => {
            return Err(Stop::Fail(anyhow::anyhow!("GET {url}: HTTP {code}")))
        }
        Err(e @ (ureq::Error::Io(_) | ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed)) => {
            return Err(Stop::Retry(anyhow::anyhow!("GET {url}: {e}")))
        }
        Err(e) => return Err(Stop::Fail(anyhow::anyhow!("GET {url}: {e}"))),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let length: Option<u64> = header("content-length").and_then(|v| v.parse().ok());
    let resumed = response.status().as_u16() == 206;
    if resumed {
        let start = header("content-range").as_deref().and_then(range_start);
        if start != Some(have) {
            return Err(Stop::Fail(anyhow::anyhow!(
                "GET {url}: asked for bytes from {have}, the server sent {:?}",
                header("content-range")
            )));
        }
    }
    // A server that ignores Range sends everything again: start the file afresh.
    let from = if resumed { have } else { 0 };
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .with_context(|| format!("cannot write {}", part.display()))
        .map_err(Stop::Fail)?;
    if let Some(length) = length {
        bar.set_length(from + length);
    }
    bar.set_position(from);
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let got = bar.position();
                return Err(Stop::Retry(anyhow::anyhow!(
                    "GET {url}: connection lost after {got} bytes: {e}"
                )));
            }
        };
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", part.display()))
            .map_err(Stop::Fail)?;
        bar.inc(n as u64);
    }
    out.flush()
        .with_context(|| format!("cannot write {}", part.display()))
        .map_err(Stop::Fail)
}

/// Downloads `archive` from `url` into `dir`, resuming `<file>.part` if present;
/// returns the checked archive's path. A size or md5 mismatch removes the part
/// (so the next run starts afresh) and is an error naming file, expected and found.
pub fn download(archive: &Archive, url: &str, dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let part = dir.join(format!("{}.part", archive.file));
    if let (Some(size), Ok(meta)) = (archive.size, std::fs::metadata(&part)) {
        if meta.len() > size {
            std::fs::remove_file(&part)
                .with_context(|| format!("cannot remove {}", part.display()))?;
        }
    }
    let agent = agent();
    let bar = bar();
    eprintln!("downloading {url}\n         to {}", part.display());
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(&agent, url, &part, &bar) {
            Ok(()) => break,
            Err(Stop::Retry(e)) if tries < ATTEMPTS => {
                bar.suspend(|| eprintln!("{e:#}; trying again ({} of {ATTEMPTS})", tries + 1));
                std::thread::sleep(RETRY_PAUSE * tries);
            }
            Err(Stop::Retry(e)) => {
                bar.abandon();
                let kept = match std::fs::metadata(&part) {
                    Ok(m) if m.len() > 0 => format!(
                        " ({} bytes are kept in {}: run the command again to resume)",
                        m.len(),
                        part.display()
                    ),
                    _ => String::new(),
                };
                bail!("{e:#}; gave up after {ATTEMPTS} tries{kept}")
            }
            Err(Stop::Fail(e)) => {
                bar.abandon();
                return Err(e);
            }
        }
    }
    bar.finish_and_clear();
    check(archive, url, &part)?;
    let done = dir.join(archive.file);
    std::fs::rename(&part, &done)
        .with_context(|| format!("cannot rename {} to {}", part.display(), done.display()))?;
    Ok(done)
}

/// Size and md5 of a finished download against the catalog.
fn check(archive: &Archive, url: &str, part: &Path) -> Result<()> {
    let size = std::fs::metadata(part)
        .with_context(|| format!("cannot read {}", part.display()))?
        .len();
    let found = md5_file(part)?;
    let size_ok = archive.size.is_none_or(|s| s == size);
    let md5_ok = archive.md5.is_none_or(|m| m == found);
    if size_ok && md5_ok {
        match archive.md5 {
            Some(_) => eprintln!("md5 {found} ok ({size} bytes)"),
            None => eprintln!("{size} bytes, md5 {found} (no published checksum to compare)"),
        }
        return Ok(());
    }
    let _ = std::fs::remove_file(part);
    let mut expected = Vec::new();
    expected.extend(archive.size.map(|s| format!("{s} bytes")));
    expected.extend(archive.md5.map(|m| format!("md5 {m}")));
    bail!(
        "checksum mismatch for {} (from {url}): expected {}, found {size} bytes with md5 \
         {found}; {} was removed, run the command again to download it afresh",
        archive.file,
        expected.join(" with "),
        part.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
