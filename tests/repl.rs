//! The REPL through piped input, and through a pseudo-terminal (util-linux
//! `script`) where line editing matters: completion and coloured errors.

use crate::common;

use common::text;
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running process whose stdout (and stderr, when merged) is collected as it comes.
struct Live {
    child: Child,
    stdin: Option<ChildStdin>,
    /// (from stdout, bytes) in the order the reader threads got them.
    chunks: Receiver<(bool, Vec<u8>)>,
    seen: String,
    stdout: String,
}

impl Live {
    fn spawn(mut cmd: Command) -> Live {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, chunks) = channel();
        for (is_stdout, mut stream) in [
            (
                true,
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            ),
            (false, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || tx.send((is_stdout, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            });
        }
        Live {
            stdin: child.stdin.take(),
            child,
            chunks,
            seen: String::new(),
            stdout: String::new(),
        }
    }

    fn send(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until `needle` has appeared (after what earlier waits consumed).
    fn wait_for(&mut self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(at) = self.seen.find(needle) {
                let upto = at + needle.len();
                let got = self.seen[..upto].to_string();
                self.seen.drain(..upto);
                return got;
            }
            let left = Duration::from_secs(60).saturating_sub(start.elapsed());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.take(chunk),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("waited 60 s for {needle:?}; output so far: {}", self.seen);
                }
            }
        }
    }

    fn take(&mut self, (is_stdout, chunk): (bool, Vec<u8>)) {
        let chunk = text(&chunk);
        if is_stdout {
            self.stdout.push_str(&chunk);
        }
        self.seen.push_str(&chunk);
    }

    /// Closes stdin and returns the exit code and the rest of the output.
    fn finish(self) -> (Option<i32>, String) {
        let (code, seen, _) = self.finish_with_stdout();
        (code, seen)
    }

    /// `finish`, and everything the REPL wrote to stdout alone: its results,
    /// whole lines, which stderr's chunks can split in the merged output.
    fn finish_with_stdout(mut self) -> (Option<i32>, String, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        while let Ok(chunk) = self.chunks.recv_timeout(Duration::from_secs(5)) {
            self.take(chunk);
        }
        (status.code(), self.seen, self.stdout)
    }
}

fn repl(dir: &std::path::Path) -> Command {
    let mut cmd = common::minima_command();
    cmd.args(["repl", "-q", "--out", "res"])
        .env("MINIMA_HISTORY", dir.join("history"))
        .env_remove("NO_COLOR")
        .current_dir(dir);
    cmd
}

#[test]
fn multi_line_inputs_help_save_and_an_error_then_success() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.rhai"), "fn thrice(x) { x * 3 }\n").unwrap();
    let mut live = Live::spawn(repl(dir.path()));
    live.send(concat!(
        "let d = toy(#{\n",
        "    n_train: 3,\n",
        "    seed: 2 });\n",
        "fn twice(x) {\n",
        "    x * 2\n",
        "}\n",
        "let s = `two\n",
        "lines`;\n",
        "s.len()\n",
        "let = 1;\n",
        "toy(#{ n_trian: 1 })\n",
        "twice(d.n_train)\n",
        ":load lib.rhai\n",
        "thrice(2)\n",
        ":help toy\n",
        ":vars\n",
        ":save session.rhai\n",
    ));
    let (code, out, results) = live.finish_with_stdout();
    assert_eq!(code, Some(0), "{out}");
    // Results (stdout) and errors (stderr) come through two pipes, so their
    // relative order here is the reader threads', not the REPL's: results are
    // checked as lines of stdout alone.
    let lines: Vec<&str> = results.lines().collect();
    assert!(lines.contains(&"9"), "a string across lines: {out}");
    assert!(out.contains("error: syntax"), "{out}");
    assert!(out.contains("unknown key `n_trian`"), "{out}");
    // twice(d.n_train) was sent after both bad inputs: it ran, with d intact.
    assert!(lines.contains(&"12"), "twice(6) after the errors: {out}");
    assert!(lines.contains(&"6"), "thrice from :load: {out}");
    assert!(
        out.contains("toy(_: map) -> Data"),
        ":help signature: {out}"
    );
    assert!(
        out.contains("The two-Gaussian toy data set"),
        ":help description: {out}"
    );
    assert!(
        out.contains("example: let d = toy("),
        ":help example: {out}"
    );
    assert!(
        out.contains("n_train: training points per class"),
        ":help keys: {out}"
    );
    assert!(out.contains("d: Data\n"), ":vars: {out}");
    assert!(!out.contains('\x1b'), "no colour on a pipe: {out:?}");

    // The saved session is a script that reproduces the successful inputs.
    let saved = std::fs::read_to_string(dir.path().join("session.rhai")).unwrap();
    assert!(!saved.contains("n_trian"), "{saved}");
    assert!(
        saved.contains("seed: 2 });\nfn twice(x) {\n    x * 2\n};\n"),
        "{saved}"
    );
    let mut rerun = Live::spawn(repl(dir.path()));
    rerun.send(":load session.rhai\nprint(twice(thrice(d.n_train)))\n");
    let (code, out) = rerun.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\n36\n"), "{out}");
}

#[test]
fn ctrl_c_during_training_returns_to_the_prompt_with_the_session_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut live = Live::spawn(repl(dir.path()));
    live.send(concat!(
        "let d = toy(#{ n_train: 8 });\n",
        "let m = model(#{ arch: \"mlp\", hidden: [8] }, d);\n",
        "print(\"training\"); train(m, d, #{ epochs: 100000000, batch_size: 1 })\n",
    ));
    live.wait_for("training\n");
    std::thread::sleep(Duration::from_millis(300));
    let pid = live.child.id().to_string();
    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    live.wait_for("interrupted (Ctrl-C)");
    live.send("print(`after ${d.n_train}`);\n");
    let (code, out) = live.finish();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("after 16"), "{out}");
}

/// Runs the REPL on a pseudo-terminal, typing each input after the prompt shows.
fn on_terminal(dir: &std::path::Path, inputs: &[&str]) -> String {
    let minima = env!("CARGO_BIN_EXE_minima");
    let mut cmd = Command::new("script");
    cmd.args(["-qfec", &format!("{minima} repl -q --out res"), "/dev/null"])
        .env("MINIMA_HISTORY", dir.join("history"))
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .current_dir(dir);
    let mut live = Live::spawn(cmd);
    let mut out = String::new();
    for input in inputs {
        out.push_str(&live.wait_for("minima> \r"));
        live.send(input);
    }
    out.push_str(&live.wait_for("minima> \r"));
    live.send("\x04");
    let (code, rest) = live.finish();
    assert_eq!(code, Some(0), "{out}{rest}");
    out + rest.as_str()
}

#[test]
fn terminal_completes_names_methods_config_keys_and_paths_and_colours_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("results_folder")).unwrap();
    let out = on_terminal(
        dir.path(),
        &[
            "let abc_value = 21;\r",
            "abc_v\t * 2\r",
            "toy(#{ n_tr\t5 }).n_train\r",
            "let d = toy();\r",
            "d.n_te\t\r",
            "\"results_f\t\".len()\r",
            "toy(#{ bad: 1 })\r",
        ],
    );
    // Each completion shows as the line redrawn with the completed text.
    for (completed, result) in [
        ("minima> abc_value\r", "42\r\n"),
        ("minima> toy(#{ n_train: \r", "10\r\n"),
        ("minima> d.n_test\r", "100\r\n"),
        // "results_folder/" is 15 characters.
        ("minima> \"results_folder/\r", "15\r\n"),
    ] {
        let after = out
            .split(completed)
            .nth(1)
            .unwrap_or_else(|| panic!("{completed:?} in {out:?}"));
        assert!(
            after.contains(result),
            "{result:?} after {completed:?}: {out:?}"
        );
    }
    assert!(out.contains("\x1b[1;31merror:"), "coloured error: {out:?}");
    assert!(out.contains("\x1b[1;31m^"), "coloured caret: {out:?}");
}

#[test]
fn piped_input_continues_statements_and_ends_unterminated_strings_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mylib.rhai"), "fn triple(x) { x * 3 }\n").unwrap();
    let mut live = Live::spawn(repl(dir.path()));
    live.send(concat!(
        "let x = 40 +\n",
        " 2;\n",
        "print(x);\n",
        "let s = \"abc\n",
        "print(`after ${x}`);\n",
        "import \"mylib\" as m;\n",
        "m::triple(\n",
        "  x)\n",
        "let y = x *\n",
    ));
    let (code, out, results) = live.finish_with_stdout();
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<&str> = results.lines().collect();
    assert!(lines.contains(&"42"), "a statement across lines: {out}");
    // The unterminated string is an error on its own line; the next input runs.
    assert!(
        out.contains("error: syntax: Open string is not terminated"),
        "{out}"
    );
    assert!(lines.contains(&"after 42"), "{out}");
    assert!(
        lines.contains(&"126"),
        "a module from the current folder: {out}"
    );
    // A statement still open at the end of the input shows its error.
    assert!(out.contains("error: syntax: Script is incomplete"), "{out}");
}

#[test]
fn terminal_lists_the_candidates_of_an_ambiguous_tab() {
    let dir = tempfile::tempdir().unwrap();
    let out = on_terminal(
        dir.path(),
        &[
            "let d = toy();\r",
            "d.n_t\t\t\x15\r",
            "dataset(\"cifar10\", #{ ro\t\x15\r",
        ],
    );
    // The second Tab lists both properties on a line below the input.
    assert!(
        out.split("\r\n")
            .any(|l| l.split_whitespace().eq(["n_test", "n_train"])),
        "{out:?}"
    );
    assert!(out.contains("#{ root: "), "dataset keys complete: {out:?}");
}
