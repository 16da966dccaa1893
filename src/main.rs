//! The `minima` command line: run, check and explore experiment scripts.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use minima::host::params::Params;
use minima::host::{interrupt, repl, Host, Outcome, Session, SessionOptions};
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
}

fn parse_device(text: &str) -> Result<Device> {
    let cuda = |i: usize| {
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

fn session(script: Option<PathBuf>, args: RunArgs) -> Result<Session> {
    Ok(Session::new(SessionOptions {
        script,
        out: args.out,
        runs_base: PathBuf::from("runs"),
        device: parse_device(&args.device)?,
        quiet: args.quiet,
        params: Params::parse(&args.set)?,
    }))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    interrupt::install();
    let result = match cli.command {
        Command::Run { script, args } => {
            session(Some(script.clone()), args).and_then(|s| Host::new(s).run_file(&script))
        }
        Command::Check { script } => check(&script),
        Command::Repl { args } => session(None, args).and_then(|s| {
            repl::run(&Host::new(s))?;
            Ok(Outcome::Completed)
        }),
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

fn check(script: &std::path::Path) -> Result<Outcome> {
    let text = minima::host::read_script(script)?;
    let host = Host::new(session(
        Some(script.to_path_buf()),
        RunArgs {
            set: Vec::new(),
            out: None,
            device: "cpu".into(),
            quiet: true,
        },
    )?);
    match host.compile(&script.display().to_string(), &text) {
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
