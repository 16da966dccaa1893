//! What every binding of one script run shares: the device, the params, the run
//! directory (created on first use) and the provenance written to `config.json`.

use super::params::Params;
use crate::results::{Row, RunDir, Value};
use anyhow::Result;
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
        }
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
    pub fn with_run_dir<T>(&self, f: impl FnOnce(&mut RunDir) -> Result<T>) -> Result<T> {
        let mut slot = self.run_dir.borrow_mut();
        if slot.is_none() {
            let dir = match &self.options.out {
                Some(out) if self.options.resume => RunDir::open_existing(out)?,
                Some(out) => RunDir::create_at(out)?,
                None => RunDir::create_under(&self.options.runs_base, &self.stem())?,
            };
            dir.write_config(&self.config_json("running"))?;
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

    /// Rewrites config.json with the final status; a no-op when nothing was written.
    pub fn finish(&self, status: &str) -> Result<()> {
        if let Some(dir) = self.run_dir.borrow().as_ref() {
            dir.write_config(&self.config_json(status))?;
        }
        Ok(())
    }

    /// Columns every recorded row carries: the params the script read.
    pub fn param_columns(&self) -> Row {
        self.params.borrow().columns()
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
        serde_json::json!({
            "script": script,
            "overrides": params.overrides_json(),
            "params": params.used_json(),
            "seed": params.used_json().get("seed").cloned(),
            "minima_version": env!("CARGO_PKG_VERSION"),
            "git_commit": env!("MINIMA_GIT_COMMIT"),
            "libtorch": "2.13.0",
            "device": super::engine::device_name(self.device()),
            "threads": tch::get_num_threads(),
            "started_at": self.started.to_rfc3339(),
            "updated_at": chrono::Utc::now().to_rfc3339(),
            "status": status,
        })
    }
}

/// `Value::Str` shorthand used across bindings.
pub fn text(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}
