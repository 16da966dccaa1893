//! Refusing allocations that cannot fit, before libtorch tries: an estimate of the
//! bytes against the memory the system says is available.

use anyhow::{bail, Result};
use tch::Device;

/// Bytes the system can still hand out without swapping: MemAvailable from
/// /proc/meminfo on Linux; None elsewhere, or for a CUDA device (tch does not
/// report device memory), where nothing is refused up front.
pub fn available(device: Device) -> Option<u64> {
    if device != Device::Cpu {
        return None;
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// Bytes as people read them: `4.0 TB`, `512.0 MB`.
pub fn human(bytes: f64) -> String {
    let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// Fails when `bytes` (an estimate for `what`) exceed the memory available on
/// `device`; the message gives both.
pub fn check_fits(what: &str, bytes: f64, device: Device) -> Result<()> {
    fits(what, bytes, available(device))
}

fn fits(what: &str, bytes: f64, free: Option<u64>) -> Result<()> {
    let Some(free) = free else {
        return Ok(());
    };
    if bytes > free as f64 {
        bail!(
            "{what} needs about {} ({bytes:.3e} bytes), more than the {} of memory available \
             (MemAvailable in /proc/meminfo); make it smaller",
            human(bytes),
            human(free as f64)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_and_sizes_are_read() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_meminfo(text), Some(2048 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
        assert_eq!(human(4.0e12), "4.0 TB");
        assert_eq!(human(999.0), "999 bytes");
        let e = fits("a test", 4.0e12, Some(2_000_000_000))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a test needs about 4.0 TB (4.000e12 bytes), more than the 2.0 GB of memory available"), "{e}");
        assert!(fits("a test", 1.0e9, Some(2_000_000_000)).is_ok());
        assert!(fits("a test", 1.0e30, None).is_ok());
    }
}
