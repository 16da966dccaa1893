//! Where a data set's files are: the first of
//! 1. the `root` the script gives,
//! 2. `$MINIMA_DATA/<name>` when MINIMA_DATA is set,
//! 3. the data set's system folder, if present (fashion_mnist:
//!    /usr/share/datasets/fashion-mnist from Debian's dataset-fashion-mnist),
//! 4. `~/.cache/minima/data/<name>` (`$XDG_CACHE_HOME/minima/data/<name>`),
//!    which is also where `minima data fetch` puts downloads.

use super::names::Name;
use std::path::{Path, PathBuf};

pub const ENV: &str = "MINIMA_DATA";

fn system_folder(name: &str) -> Option<PathBuf> {
    match Name::parse(name) {
        Ok(Name::FashionMnist) => Some(PathBuf::from("/usr/share/datasets/fashion-mnist")),
        _ => None,
    }
}

fn cache_folder(name: &str) -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("minima").join("data").join(name)
}

/// The folder a data set is read from, and which rule chose it (for messages).
pub fn resolve(name: &str, explicit: Option<&Path>) -> (PathBuf, &'static str) {
    if let Some(root) = explicit {
        return (root.to_path_buf(), "the `root` option");
    }
    if let Some(base) = std::env::var_os(ENV) {
        return (PathBuf::from(base).join(name), "$MINIMA_DATA");
    }
    if let Some(system) = system_folder(name).filter(|p| p.is_dir()) {
        return (system, "the system data folder");
    }
    (cache_folder(name), "the default cache folder")
}

/// Where `minima data fetch` unpacks a data set: like [`resolve`], but never a
/// system folder.
pub fn fetch_target(name: &str, explicit: Option<&Path>) -> PathBuf {
    match (explicit, std::env::var_os(ENV)) {
        (Some(root), _) => root.to_path_buf(),
        (None, Some(base)) => PathBuf::from(base).join(name),
        (None, None) => cache_folder(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_root_wins_and_cache_is_the_fallback() {
        let (p, why) = resolve("cifar10", Some(Path::new("/data/c10")));
        assert_eq!((p, why), (PathBuf::from("/data/c10"), "the `root` option"));
        if std::env::var_os(ENV).is_none() {
            let (p, _) = resolve("cifar10", None);
            assert!(p.ends_with("minima/data/cifar10"), "{}", p.display());
            assert_eq!(fetch_target("cifar10", None), p);
        }
    }
}
