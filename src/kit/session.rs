//! What every binding of one script run shares: the device, the params, the run
//! directory (created on first use) and the provenance written to `config.json`.

use super::params::Params;
use crate::results::part_folder::PartFolder;
use crate::results::shard::Shard;
use crate::results::{Row, RunDir, Value};
use anyhow::{bail, Result};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use tch::Device;

pub struct SessionOptions {
    /// The script's path; `None` in the REPL.
    pub script: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub runs_base: PathBuf,
    pub device: Device,
    pub quiet: bool,
    pub params: Params,
    /// `out` is an earlier run folder to continue (`minima run DIR`).
    pub resume: bool,
}

pub struct Session {
    pub options: SessionOptions,
    pub params: RefCell<Params>,
    run_dir: RefCell<Option<RunDir>>,
    started: chrono::DateTime<chrono::Utc>,
    next_run: Cell<i64>,
    /// This process's share of every sweep (`--shard`, `--jobs`, Slurm).
    shard: Option<Shard>,
    /// The sweep configuration whose body is running; records go into it.
    part: RefCell<Option<PartFolder>>,
    /// `next_run` outside the body, restored when it ends.
    outer_run: Cell<i64>,
    /// Facts the composer adds to `config.json` (e.g. which engine trains mlps),
    /// so the kit need not know the domains that decide them.
    notes: RefCell<serde_json::Map<String, serde_json::Value>>,
}

impl Session {
    pub fn new(mut options: SessionOptions) -> Session {
        let params = std::mem::take(&mut options.params);
        Session {
            options,
            params: RefCell::new(params),
            run_dir: RefCell::new(None),
            started: chrono::Utc::now(),
            next_run: Cell::new(0),
            shard: None,
            part: RefCell::new(None),
            outer_run: Cell::new(0),
            notes: RefCell::new(serde_json::Map::new()),
        }
    }

    /// Adds `key: value` to the `config.json` this session writes.
    pub fn note(&self, key: &str, value: serde_json::Value) {
        self.notes.borrow_mut().insert(key.to_string(), value);
    }

    pub fn with_shard(mut self, shard: Option<Shard>) -> Session {
        self.shard = shard;
        self
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// More than one process shares the run folder.
    fn sharded(&self) -> bool {
        self.shard.is_some_and(|s| s.count > 1)
    }

    /// `config.json`, or one file per shard so shards never overwrite each other's.
    pub fn config_name(&self) -> String {
        match self.shard {
            Some(s) if s.count > 1 => s.config_name(),
            _ => crate::results::run_dir::CONFIG.to_string(),
        }
    }

    /// Starts a sweep body: records go to `part`, run indices restart at 0.
    pub fn enter_part(&self, part: PartFolder) {
        self.outer_run.set(self.next_run.replace(0));
        *self.part.borrow_mut() = Some(part);
    }

    pub fn leave_part(&self) -> Option<PartFolder> {
        self.next_run.set(self.outer_run.get());
        self.part.borrow_mut().take()
    }

    pub fn in_part(&self) -> bool {
        self.part.borrow().is_some()
    }

    /// The `sweep_*` columns of the running configuration (none outside a body).
    pub fn part_columns(&self) -> Row {
        self.part
            .borrow()
            .as_ref()
            .map(|p| p.columns.clone())
            .unwrap_or_default()
    }

    /// Where run `index` keeps its checkpoint: per configuration in a sweep body;
    /// none outside one in a sharded process (every shard would share the path).
    pub fn checkpoint_path(&self, index: i64) -> Result<Option<PathBuf>> {
        let name = format!("run-{index}.safetensors");
        if let Some(part) = self.part.borrow().as_ref() {
            return Ok(Some(part.checkpoints.join(name)));
        }
        if self.sharded() {
            return Ok(None);
        }
        self.with_run_dir(|d| Ok(Some(d.resolve(&format!("checkpoints/{name}")))))
    }

    /// Refuses `what` (a table write) outside a sweep body in a sharded process,
    /// where every shard would overwrite the others' table.
    pub fn check_can_record(&self, what: &str) -> Result<()> {
        if let (false, Some(s)) = (self.in_part(), self.shard.filter(|s| s.count > 1)) {
            bail!(
                "{what} outside sweep(...) in shard {} of a sharded run: every shard would write the same file; \
                 record inside the sweep body",
                s.label()
            );
        }
        Ok(())
    }

    pub fn device(&self) -> Device {
        self.options.device
    }

    pub fn quiet(&self) -> bool {
        self.options.quiet
    }

    /// Index of the next run trained in this session (the `run` column).
    pub fn take_run_index(&self) -> i64 {
        let i = self.next_run.get();
        self.next_run.set(i + 1);
        i
    }

    fn stem(&self) -> String {
        self.options
            .script
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "repl".to_string())
    }

    /// Runs `f` on the run directory, creating it (and its config.json) first.
    /// Inside a sweep body, `f` gets the configuration's folder instead.
    pub fn with_run_dir<T>(&self, f: impl FnOnce(&mut RunDir) -> Result<T>) -> Result<T> {
        if let Some(part) = self.part.borrow_mut().as_mut() {
            return f(&mut part.dir);
        }
        let mut slot = self.run_dir.borrow_mut();
        if slot.is_none() {
            let dir = match &self.options.out {
                Some(out) if self.options.resume => RunDir::open_existing(out)?,
                Some(out) => {
                    self.check_same_script(out)?;
                    RunDir::create_at(out)?
                }
                None if self.sharded() => bail!(
                    "a sharded run (--shard, --jobs or a Slurm array) needs --out: every shard writes into that one folder"
                ),
                None => RunDir::create_under(&self.options.runs_base, &self.stem())?,
            };
            dir.write_config(&self.config_name(), &self.config_json("running"))?;
            *slot = Some(dir);
        }
        f(slot.as_mut().expect("run dir was just created"))
    }

    pub fn run_dir_path(&self) -> Option<PathBuf> {
        self.run_dir
            .borrow()
            .as_ref()
            .map(|d| d.path().to_path_buf())
    }

    /// Writes the whole tables and config.json with the final status; a no-op
    /// when nothing was written.
    pub fn finish(&self, status: &str) -> Result<()> {
        if let Some(dir) = self.run_dir.borrow().as_ref() {
            dir.write_tables()?;
            dir.write_config(&self.config_name(), &self.config_json(status))?;
        }
        Ok(())
    }

    /// Columns every recorded row carries: the params the script read.
    pub fn param_columns(&self) -> Row {
        self.params.borrow().columns()
    }

    /// A folder may hold the results of one script and one set of overrides only:
    /// re-running that same command into it (a sweep finishing what is missing) is
    /// allowed, anything else refused.
    fn check_same_script(&self, out: &std::path::Path) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(out) else {
            return Ok(());
        };
        let ours = self.config_json("running");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("config") && name.ends_with(".json")) {
                continue;
            }
            let Ok(theirs) = std::fs::read_to_string(entry.path())
                .map_err(anyhow::Error::from)
                .and_then(|t| Ok(serde_json::from_str::<serde_json::Value>(&t)?))
            else {
                continue;
            };
            for key in ["script", "overrides"] {
                if theirs[key] != ours[key] {
                    bail!(
                        "{} holds the results of another command ({name}: {key} {}, not {}); choose another --out folder",
                        out.display(),
                        theirs[key],
                        ours[key]
                    );
                }
            }
        }
        Ok(())
    }

    fn config_json(&self, status: &str) -> serde_json::Value {
        let params = self.params.borrow();
        // Absolute, so `minima run DIR` finds the script from any folder.
        let script = self.options.script.as_ref().map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        });
        let mut json = serde_json::json!({
            "script": script,
            "overrides": params.overrides_json(),
            "params": params.used_json(),
            "seed": params.used_json().get("seed").cloned(),
            "minima_version": env!("CARGO_PKG_VERSION"),
            "git_commit": env!("MINIMA_GIT_COMMIT"),
            "libtorch": "2.13.0",
            "device": device_name(self.device()),
            "threads": tch::get_num_threads(),
            "started_at": self.started.to_rfc3339(),
            "updated_at": chrono::Utc::now().to_rfc3339(),
            "status": status,
            "shard": self.shard.map(|s| s.label()),
        });
        if let Some(object) = json.as_object_mut() {
            object.extend(self.notes.borrow().clone());
        }
        json
    }
}

/// `Value::Str` shorthand used across bindings.
pub fn text(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}

/// `cpu` or `cuda:N`, the spelling `--device` accepts.
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
