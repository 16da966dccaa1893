//! The shape of src/ that docs/ARCHITECTURE.md draws: no import circles, no import
//! from a lower layer up to a higher one (beyond the allowance), and no long file
//! without a reason at its top.

use std::path::Path;
use std::process::Command;

#[test]
fn the_import_graph_has_no_circles_and_runs_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/imports.py"))
        .output()
        .expect("python3 runs scripts/imports.py (scripts/bootstrap.sh installs python3)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "scripts/imports.py:\n{text}");
    assert!(text.contains("circles: 0\n"), "{text}");
    assert!(
        text.contains("circles between files of one folder: 0\n"),
        "{text}"
    );
}

#[test]
fn a_source_file_over_460_lines_says_why_at_its_top() {
    fn visit(dir: &Path, long: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(&path, long);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let header: String = text.lines().take_while(|l| l.starts_with("//!")).collect();
                if text.lines().count() > 460 && !header.contains("Longer than") {
                    long.push(path.display().to_string());
                }
            }
        }
    }
    let mut long = Vec::new();
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut long,
    );
    assert!(
        long.is_empty(),
        "split these, or say at their top why they are long (\"Longer than …\"): {long:?}"
    );
}
