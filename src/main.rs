//! The `minima` command line: run, check and explore experiment scripts.

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand};
use minima::host::{api, cuda, repl, Host, Outcome, Session, SessionOptions};
use minima::kit::interrupt;
use minima::kit::params::Params;
use minima::results::shard::Shard;
use minima::sweep::jobs;
use std::path::PathBuf;
use std::process::ExitCode;
use tch::Device;

#[derive(Parser)]
#[command(
    name = "minima",
    version,
    about = "Deep-learning generalization experiments as Rhai scripts; results as Parquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Override a script parameter read with param("key", default); repeatable
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run folder for results (default: runs/<script>-<timestamp>)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where training runs: auto (CUDA when present), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    device: String,
    /// No progress output
    #[arg(long, short)]
    quiet: bool,
    /// Run only the sweep configurations whose index is I modulo N (default: the
    /// Slurm array task when SLURM_ARRAY_TASK_ID is set); needs --out
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Run the sweep as K shard processes on this machine (one per GPU with
    /// --device cuda:all, else splitting the CPU threads)
    #[arg(long, value_name = "K")]
    jobs: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment script
    Run {
        script: PathBuf,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Compile a script without running it and report syntax errors
    Check { script: PathBuf },
    /// Interactive session: Rhai with every minima function
    Repl {
        #[command(flatten)]
        args: RunArgs,
    },
    /// Write API.md and minima.d.rhai (editor definitions) from the registered functions
    Doc {
        /// Folder to write into
        #[arg(long, default_value = "docs", value_name = "DIR")]
        out: PathBuf,
    },
    /// Figures and tables of a results folder: report.md, PNG and SVG (see docs/RESULTS.md)
    Report {
        /// A run folder, or a folder of run folders
        results: PathBuf,
        /// Folder to write into (default: RESULTS/report)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Download, list and check data sets (see docs/DATA.md)
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download, check and unpack a data set's official archive
    Fetch {
        /// cifar10, cifar100 or cinic10
        name: String,
        /// Folder to unpack into (default: $MINIMA_DATA/NAME or ~/.cache/minima/data/NAME)
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Which archive: binary (default) or python for CIFAR
        #[arg(long)]
        format: Option<String>,
        /// Keep the downloaded archive next to the data
        #[arg(long)]
        keep_archive: bool,
        /// Base URL replacing the official servers (also $MINIMA_DATA_MIRROR)
        #[arg(long, hide = true, value_name = "URL")]
        mirror: Option<String>,
    },
    /// Show every known data set, where it is read from and whether it is there
    List,
    /// Check a data set's files: sizes, checksums, counts
    Verify {
        name: String,
        /// Folder to check (default: where loaders read it from)
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
}

fn parse_device(text: &str) -> Result<Device> {
    let loaded = if text == "cpu" { Ok(()) } else { cuda::load() };
    let cuda = |i: usize| {
        if let Err(why) = &loaded {
            bail!("--device {text}: CUDA is unavailable: {why} (use cpu or auto)");
        }
        if !tch::Cuda::is_available() {
            bail!("--device {text}: no CUDA device is available (use cpu or auto)");
        }
        let count = tch::Cuda::device_count() as usize;
        if i >= count {
            bail!("--device {text}: only {count} CUDA device(s) present");
        }
        Ok(Device::Cuda(i))
    };
    match text {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i),
            _ => bail!("--device {other}: expected auto, cpu, cuda or cuda:N"),
        },
    }
}

fn options(script: Option<PathBuf>, args: RunArgs) -> Result<SessionOptions> {
    Ok(SessionOptions {
        script,
        out: args.out,
        runs_base: PathBuf::from("runs"),
        device: parse_device(&args.device)?,
        quiet: args.quiet,
        params: Params::parse(&args.set)?,
        resume: false,
    })
}

fn session(script: Option<PathBuf>, args: RunArgs) -> Result<Session> {
    Ok(Session::new(options(script, args)?))
}

/// `minima run DIR`: the script and overrides that made run folder DIR, run again
/// into DIR. Finished runs are read back from their checkpoints, an unfinished
/// one continues from its checkpoint, the rest train as before.
fn resume(dir: PathBuf, mut args: RunArgs) -> Result<(Session, PathBuf)> {
    if args.shard.is_some() || args.jobs.is_some() {
        bail!(
            "minima run {}: to shard a sweep, run its script again: minima run SCRIPT --out {} --shard/--jobs ...",
            dir.display(),
            dir.display()
        );
    }
    if !args.set.is_empty() || args.out.is_some() {
        bail!(
            "minima run {}: a resumed run keeps its own overrides and folder; drop --set/--out",
            dir.display()
        );
    }
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a run folder: cannot read {}: {e}",
            dir.display(),
            config_path.display()
        )
    })?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let script = config["script"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} names no script (a REPL session cannot be resumed)",
                config_path.display()
            )
        })?;
    if let Some(overrides) = config["overrides"].as_object() {
        args.set = overrides
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
    }
    args.out = Some(dir);
    let mut options = options(Some(script.clone()), args)?;
    options.resume = true;
    Ok((Session::new(options), script))
}

/// `show()` and frame printing: every column of a results table (not Polars' 8),
/// without the dtype row, unless the user set these variables.
fn table_format() {
    for (key, value) in [
        ("POLARS_FMT_MAX_COLS", "64"),
        ("POLARS_TABLE_WIDTH", "240"),
        ("POLARS_FMT_TABLE_HIDE_COLUMN_DATA_TYPES", "1"),
        ("POLARS_FMT_STR_LEN", "40"),
    ] {
        if std::env::var_os(key).is_none() {
            // Single-threaded here: nothing else reads the environment yet.
            std::env::set_var(key, value);
        }
    }
}

fn main() -> ExitCode {
    minima::host::alloc::keep_large_allocations();
    let cli = Cli::parse();
    table_format();
    // `data` commands stop at once on Ctrl-C: a download's `.part` file is resumed by
    // the next fetch. Everything else stops at its next safe point.
    if matches!(cli.command, Command::Data { .. }) {
        interrupt::install_exit();
    } else {
        interrupt::install();
    }
    let result = match cli.command {
        Command::Run { script, args } if script.is_dir() => {
            resume(script, args).and_then(|(s, script)| Host::new(s).run_file(&script))
        }
        Command::Run { script, args } => run_script(script, args),
        Command::Check { script } => check(&script),
        Command::Repl { args } => session(None, args).and_then(|s| {
            repl::run(&Host::new(s))?;
            Ok(Outcome::Completed)
        }),
        Command::Doc { out } => doc(&out),
        Command::Data { command } => data(command),
        Command::Report { results, out } => report(&results, out.as_deref()),
    };
    match result {
        Ok(Outcome::Completed) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `minima run SCRIPT`: this process's shard of any sweep (`--shard`, else a Slurm
/// array task), or `--jobs`/`--device cuda:all` child processes.
fn run_script(script: PathBuf, args: RunArgs) -> Result<Outcome> {
    let shard = Shard::resolve(args.shard.as_deref(), |k| std::env::var(k).ok())?;
    if args.jobs.is_some() || args.device == "cuda:all" {
        return run_jobs(script, args, shard);
    }
    let session = session(Some(script.clone()), args)?.with_shard(shard);
    Host::new(session).run_file(&script)
}

fn run_jobs(script: PathBuf, args: RunArgs, shard: Option<Shard>) -> Result<Outcome> {
    minima::host::read_script(&script)?;
    // A malformed or repeated --set fails here once, not in every child.
    Params::parse(&args.set)?;
    let gpus = (args.device == "cuda:all")
        .then(|| {
            cuda::load().map_err(|why| anyhow!("--device cuda:all: CUDA is unavailable: {why}"))?;
            jobs::Devices::all_gpus()
        })
        .transpose()?;
    let count = match (args.jobs, &gpus) {
        (Some(k), _) => k,
        (None, Some(jobs::Devices::Gpus(g))) => g.len(),
        _ => 1,
    };
    if count == 0 {
        bail!("--jobs 0: need at least one process");
    }
    let devices = match gpus {
        Some(d) => d,
        None => {
            let on_cpu = parse_device(&args.device)? == Device::Cpu;
            jobs::Devices::same(&args.device, on_cpu, count)
        }
    };
    let mut extra: Vec<String> = args
        .set
        .iter()
        .flat_map(|s| ["--set".to_string(), s.clone()])
        .collect();
    if args.quiet {
        extra.push("--quiet".into());
    }
    let out = jobs::out_folder(args.out, std::path::Path::new("runs"), &script)?;
    let report = jobs::run(
        &std::env::current_exe()?,
        jobs::Plan {
            script: &script,
            out: &out,
            shard: shard.unwrap_or(Shard { index: 0, count: 1 }),
            jobs: count,
            devices,
            extra,
        },
    )?;
    for failure in &report.failed {
        eprintln!("error: {failure}");
    }
    if !report.failed.is_empty() {
        eprintln!("re-run the same command to finish what is missing: complete configurations are skipped");
    }
    eprintln!("results: {}", out.display());
    Ok(if report.interrupted {
        Outcome::Interrupted
    } else if report.failed.is_empty() {
        Outcome::Completed
    } else {
        Outcome::Failed
    })
}

/// A host that runs nothing itself: for compiling scripts and reading the registry.
fn quiet_cpu_host(script: Option<PathBuf>) -> Result<Host> {
    let args = RunArgs {
        set: Vec::new(),
        out: None,
        device: "cpu".into(),
        quiet: true,
        shard: None,
        jobs: None,
    };
    Ok(Host::new(session(script, args)?))
}

fn doc(out: &std::path::Path) -> Result<Outcome> {
    let host = quiet_cpu_host(None)?;
    std::fs::create_dir_all(out)?;
    for (name, text) in [
        ("API.md", api::markdown(&host.engine)),
        ("minima.d.rhai", api::definitions(&host.engine)),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(Outcome::Completed)
}

fn report(results: &std::path::Path, out: Option<&std::path::Path>) -> Result<Outcome> {
    let written = minima::report::write(results, out)?;
    println!(
        "wrote {} ({} figure and picture files)",
        written.report.display(),
        written.files.len()
    );
    for why in &written.missing {
        println!("  left out: {why}");
    }
    Ok(Outcome::Completed)
}

fn check(script: &std::path::Path) -> Result<Outcome> {
    let text = minima::host::read_script(script)?;
    let host = quiet_cpu_host(Some(script.to_path_buf()))?;
    match host.check_file(script, &text) {
        Ok(_) => {
            println!("{}: ok", script.display());
            Ok(Outcome::Completed)
        }
        Err(msg) => {
            eprint!("{msg}");
            Ok(Outcome::Failed)
        }
    }
}

/// `minima data ...`: an unknown name or format is a usage error (exit 2); a failed
/// download or a failed check exits 1.
fn data(command: DataCommand) -> Result<Outcome> {
    use minima::data::fetch::{self, catalog, verify};
    match command {
        DataCommand::Fetch {
            name,
            root,
            format,
            keep_archive,
            mirror,
        } => {
            let set = catalog::find(&name)?;
            let variant = set.variant(format.as_deref())?;
            if let (None, Some(manual)) = (variant.archive, set.manual) {
                bail!("{name} is not downloaded by minima: {manual}");
            }
            let options = fetch::FetchOptions {
                root: root.as_deref(),
                mirror: mirror.as_deref(),
                keep_archive,
            };
            Ok(match fetch::fetch(set, variant, &options) {
                Ok(_) => Outcome::Completed,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    Outcome::Failed
                }
            })
        }
        DataCommand::List => {
            for line in verify::list() {
                println!("{line}");
            }
            println!("get a missing one with: minima data fetch NAME (see docs/DATA.md)");
            Ok(Outcome::Completed)
        }
        DataCommand::Verify { name, root } => {
            let set = catalog::find(&name)?;
            let (dir, why) = minima::data::root::resolve(set.name, root.as_deref());
            println!("checking {} ({why})", dir.display());
            let report = verify::verify(set, &dir);
            for line in &report.lines {
                println!("{line}");
            }
            if report.ok {
                return Ok(Outcome::Completed);
            }
            eprintln!(
                "error: {name} in {} fails its checks (see above)",
                dir.display()
            );
            Ok(Outcome::Failed)
        }
    }
}
