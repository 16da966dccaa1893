//! Which configurations one process runs: shard I of N owns the configurations
//! whose index ≡ I (mod N). From `--shard I/N`, else from a Slurm array job's
//! variables; `--jobs K` splits a shard into K finer ones.

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 0 ≤ I < N.
    pub fn parse(text: &str) -> Result<Shard> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if index < count => Ok(Shard { index, count }),
            Some(_) => bail!("--shard {text}: I must be below N (shards are numbered 0 to N-1)"),
            None => bail!("--shard {text}: expected I/N, e.g. 0/4"),
        }
    }

    /// The shard of a Slurm array task: (ID − MIN) / STEP of COUNT tasks, so
    /// `--array=1-10` and `--array=0-18:2` both give shards 0..N-1. `None`
    /// outside an array job.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let Some(id) = var("SLURM_ARRAY_TASK_ID") else {
            return Ok(None);
        };
        let number = |name: &str, default: Option<i64>| -> Result<i64> {
            match var(name) {
                Some(text) => text
                    .trim()
                    .parse()
                    .with_context(|| format!("{name}={text} is not an integer")),
                None => default.with_context(|| {
                    format!("SLURM_ARRAY_TASK_ID is set but {name} is not; run under sbatch --array or pass --shard I/N")
                }),
            }
        };
        let id: i64 = id
            .trim()
            .parse()
            .with_context(|| format!("SLURM_ARRAY_TASK_ID={id} is not an integer"))?;
        let count = number("SLURM_ARRAY_TASK_COUNT", None)?;
        let min = number("SLURM_ARRAY_TASK_MIN", Some(0))?;
        let step = number("SLURM_ARRAY_TASK_STEP", Some(1))?.max(1);
        let offset = id - min;
        if count < 1 || offset < 0 || offset % step != 0 || offset / step >= count {
            bail!(
                "Slurm array task {id} (min {min}, step {step}, count {count}) is not one of an evenly spaced range; \
                 use --array=A-B or --array=A-B:S, or pass --shard I/N"
            );
        }
        Ok(Some(Shard {
            index: (offset / step) as usize,
            count: count as usize,
        }))
    }

    /// `--shard` when given, else the Slurm array task, else none (every
    /// configuration).
    pub fn resolve(
        flag: Option<&str>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>> {
        match flag {
            Some(text) => Shard::parse(text).map(Some),
            None => Shard::from_slurm(var),
        }
    }

    pub fn owns(&self, index: i64) -> bool {
        index.rem_euclid(self.count as i64) == self.index as i64
    }

    /// `k` shards that together own exactly what this one owns: child j takes
    /// index ≡ I + N·j (mod N·k).
    pub fn split(self, k: usize) -> Vec<Shard> {
        (0..k)
            .map(|j| Shard {
                index: self.index + self.count * j,
                count: self.count * k,
            })
            .collect()
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// The per-process config file: one per shard, so shards never overwrite
    /// each other's provenance.
    pub fn config_name(&self) -> String {
        format!("config-shard-{}-of-{}.json", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shards_partition_the_indices() {
        for n in 1..6 {
            let shards: Vec<Shard> = (0..n).map(|i| Shard { index: i, count: n }).collect();
            for index in 0..40 {
                assert_eq!(shards.iter().filter(|s| s.owns(index)).count(), 1);
            }
        }
        let s = Shard::parse("2/5").unwrap();
        let owned: Vec<i64> = (0..20).filter(|&i| s.owns(i)).collect();
        assert_eq!(owned, [2, 7, 12, 17]);
    }

    #[test]
    fn split_shards_own_exactly_their_parent() {
        let parent = Shard { index: 1, count: 3 };
        let children = parent.split(4);
        for index in 0..100 {
            let owners = children.iter().filter(|c| c.owns(index)).count();
            assert_eq!(owners, usize::from(parent.owns(index)), "index {index}");
        }
        assert_eq!(
            children[2],
            Shard {
                index: 7,
                count: 12
            }
        );
    }

    #[test]
    fn bad_shard_flags_are_refused() {
        for (text, expected) in [
            ("3/3", "I must be below N"),
            ("1", "expected I/N"),
            ("a/2", "expected I/N"),
            ("0/0", "I must be below N"),
        ] {
            let e = Shard::parse(text).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn slurm_variables_give_the_shard() {
        let none = Shard::from_slurm(env(&[])).unwrap();
        assert_eq!(none, None);
        let plain = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            Shard::from_slurm(plain).unwrap(),
            Some(Shard { index: 3, count: 8 })
        );
        // --array=1-10: ids 1..10 are shards 0..9.
        let from_one = env(&[
            ("SLURM_ARRAY_TASK_ID", "10"),
            ("SLURM_ARRAY_TASK_COUNT", "10"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(
            Shard::from_slurm(from_one).unwrap(),
            Some(Shard {
                index: 9,
                count: 10
            })
        );
        // --array=0-18:2: ids 0, 2, ..., 18 are shards 0..9.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_COUNT", "10"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(
            Shard::from_slurm(stepped).unwrap(),
            Some(Shard {
                index: 3,
                count: 10
            })
        );
        // The flag wins over the environment.
        let both = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ]);
        assert_eq!(
            Shard::resolve(Some("1/2"), both).unwrap(),
            Some(Shard { index: 1, count: 2 })
        );
    }

    #[test]
    fn inconsistent_slurm_variables_are_refused() {
        for (pairs, expected) in [
            (
                vec![("SLURM_ARRAY_TASK_ID", "3")],
                "SLURM_ARRAY_TASK_COUNT is not",
            ),
            (
                vec![
                    ("SLURM_ARRAY_TASK_ID", "x"),
                    ("SLURM_ARRAY_TASK_COUNT", "2"),
                ],
                "SLURM_ARRAY_TASK_ID=x is not an integer",
            ),
            (
                // --array=1,3,7: a list with gaps.
                vec![
                    ("SLURM_ARRAY_TASK_ID", "7"),
                    ("SLURM_ARRAY_TASK_COUNT", "3"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                ],
                "not one of an evenly spaced range",
            ),
        ] {
            let e = Shard::from_slurm(env(&pairs)).unwrap_err().to_string();
            assert!(e.contains(expected), "{pairs:?}: {e}");
        }
    }
}
