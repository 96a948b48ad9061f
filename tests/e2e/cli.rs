//! The command line: `--version`, `components`, `validate` on every shipped config and on a battery of broken
//! ones (each with the message a user needs), and `run` refusing a broken file with the same text.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{OTLAKE, output_text, workspace};

fn otlake(args: &[&str]) -> (bool, String) {
    output_text(Command::new(OTLAKE).args(args))
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn version_and_components() {
    let (ok, text) = otlake(&["--version"]);
    assert!(ok && text.starts_with("otlake "), "{text}");
    let (ok, text) = otlake(&["components"]);
    assert!(ok, "{text}");
    for expected in ["receiver   otlp", "exporter   debug", "exporter   file"] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
}

#[test]
fn every_shipped_config_validates() {
    let mut files = yaml_files("configs");
    files.extend(yaml_files("configs/examples"));
    assert!(!files.is_empty());
    for file in files {
        let (ok, text) = otlake(&["validate", "--config", file.to_str().expect("utf8")]);
        assert!(ok, "{} should be valid:\n{text}", file.display());
    }
    let (ok, text) = otlake(&["validate"]);
    assert!(
        ok && text.contains("embedded"),
        "the embedded default validates: {text}"
    );
}

/// Each file in tests/configs/broken starts with `# expect: <text>` lines: every one must be in the output.
#[test]
fn broken_configs_yield_every_expected_message() {
    let files = yaml_files("tests/configs/broken");
    assert!(files.len() >= 8, "the battery has its files");
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read");
        let expected: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
        let path = file.to_str().expect("utf8");
        let (ok, text) = otlake(&["validate", "--config", path]);
        assert!(!ok, "{} should be invalid:\n{text}", file.display());
        for e in &expected {
            assert!(
                text.contains(e),
                "{}: expected `{e}` in:\n{text}",
                file.display()
            );
        }
        // `run` refuses the same file with the same text.
        let (ok, run_text) = otlake(&["run", "--config", path]);
        assert!(!ok, "run must refuse {}", file.display());
        for e in &expected {
            assert!(
                run_text.contains(e),
                "{}: run should say `{e}`:\n{run_text}",
                file.display()
            );
        }
    }
}
