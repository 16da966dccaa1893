//! `minima run SCRIPT --jobs K`: K shard processes of this same command on this
//! machine, all writing into one `--out` folder. With `--device cuda:all` each
//! child sees one GPU (CUDA_VISIBLE_DEVICES); on the CPU the cores are split
//! between them (OMP_NUM_THREADS, which libtorch's intra-op pool follows). Their
//! output is passed through, each line prefixed with its shard.

use crate::results::shard::Shard;
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Where the children run.
pub enum Devices {
    /// One GPU each, round robin over these CUDA_VISIBLE_DEVICES entries.
    Gpus(Vec<String>),
    /// The parent's `--device` as given, `threads` torch threads each when it is
    /// the CPU (`None`: the device is a GPU, or OMP_NUM_THREADS was set by the user).
    Same {
        device: String,
        threads: Option<usize>,
    },
}

impl Devices {
    /// The GPUs `cuda:all` means: CUDA_VISIBLE_DEVICES's entries, else every
    /// device CUDA reports.
    pub fn all_gpus() -> Result<Devices> {
        let listed: Vec<String> = std::env::var("CUDA_VISIBLE_DEVICES")
            .ok()
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_else(|| {
                let n = if tch::Cuda::is_available() {
                    tch::Cuda::device_count()
                } else {
                    0
                };
                (0..n).map(|i| i.to_string()).collect()
            });
        if listed.is_empty() {
            bail!("--device cuda:all: no CUDA device is visible");
        }
        Ok(Devices::Gpus(listed))
    }

    /// `device` for every child; on the CPU, the cores split `jobs` ways.
    pub fn same(device: &str, on_cpu: bool, jobs: usize) -> Devices {
        let threads = (on_cpu && std::env::var_os("OMP_NUM_THREADS").is_none()).then(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / jobs).max(1)
        });
        Devices::Same {
            device: device.to_string(),
            threads,
        }
    }
}

pub struct Plan<'a> {
    pub script: &'a Path,
    pub out: &'a Path,
    /// The shard this command owns (all of it without --shard or Slurm).
    pub shard: Shard,
    pub jobs: usize,
    pub devices: Devices,
    /// Passed on to every child: `--set` values, `--quiet`.
    pub extra: Vec<String>,
}

/// How the children ended: the shards that failed, with how.
pub struct Report {
    pub failed: Vec<String>,
    pub interrupted: bool,
}

fn forward(
    stream: impl Read + Send + 'static,
    prefix: String,
    to_err: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
            let text = String::from_utf8_lossy(&line);
            // A progress bar redraws with \r; keep what it drew last.
            let text = text.rsplit('\r').next().unwrap_or_default();
            if to_err {
                let _ = writeln!(std::io::stderr().lock(), "{prefix}{text}");
            } else {
                let _ = writeln!(std::io::stdout().lock(), "{prefix}{text}");
            }
        }
    })
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended abnormally".to_string(),
    }
}

/// Starts every child, waits for all of them and says which failed.
pub fn run(exe: &Path, plan: Plan) -> Result<Report> {
    let shards = plan.shard.split(plan.jobs);
    let mut children = Vec::with_capacity(shards.len());
    for (j, shard) in shards.iter().enumerate() {
        let mut command = Command::new(exe);
        command
            .arg("run")
            .arg(plan.script)
            .arg("--out")
            .arg(plan.out)
            .args(["--shard", &shard.label()])
            .args(&plan.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &plan.devices {
            Devices::Gpus(gpus) => {
                command
                    .env("CUDA_VISIBLE_DEVICES", &gpus[j % gpus.len()])
                    .args(["--device", "cuda"]);
            }
            Devices::Same { device, threads } => {
                command.args(["--device", device]);
                if let Some(n) = threads {
                    command.env("OMP_NUM_THREADS", n.to_string());
                }
            }
        }
        // A Slurm task's variables would make the child re-derive its shard.
        command.env_remove("SLURM_ARRAY_TASK_ID");
        let mut child = command.spawn().with_context(|| {
            format!("cannot start {} for shard {}", exe.display(), shard.label())
        })?;
        let prefix = format!("[shard {}] ", shard.label());
        let pipes = [
            child
                .stdout
                .take()
                .map(|s| forward(s, prefix.clone(), false)),
            child.stderr.take().map(|s| forward(s, prefix, true)),
        ];
        children.push((*shard, child, pipes));
    }
    let mut report = Report {
        failed: Vec::new(),
        interrupted: false,
    };
    for (shard, mut child, pipes) in children {
        let status = child.wait().context("waiting for a shard process")?;
        for pipe in pipes.into_iter().flatten() {
            let _ = pipe.join();
        }
        if status.code() == Some(130) {
            report.interrupted = true;
        }
        if !status.success() {
            report.failed.push(format!(
                "shard {} (pid {}) failed: {}",
                shard.label(),
                child.id(),
                describe(status)
            ));
        }
    }
    Ok(report)
}

/// The folder every child writes into: `--out`, else a new
/// `runs/<script>-<timestamp>` made now so all children agree on it.
pub fn out_folder(out: Option<PathBuf>, runs_base: &Path, script: &Path) -> Result<PathBuf> {
    if let Some(out) = out {
        return Ok(out);
    }
    let stem = script
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sweep".into());
    Ok(crate::results::RunDir::create_under(runs_base, &stem)?
        .path()
        .to_path_buf())
}
