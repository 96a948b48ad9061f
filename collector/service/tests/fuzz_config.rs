//! Hostile config files never crash the loader: a bounded, seeded mutation fuzzer over every shipped and broken
//! config (byte flips, cuts, duplications, YAML punctuation, deep nesting, `${env:` fragments) through
//! `Config::parse` and `validate`. Any error is fine; a panic is a bug. Runs in the normal test suite.

use std::path::Path;

use otlake_core::test_util::fuzz::Rng;
use otlake_service::{Config, Registry, validate};

const FRAGMENTS: &[&str] = &[
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "&a",
    "*a",
    "!!binary",
    "|",
    ">",
    "\"",
    "'",
    "\n  ",
    "\t",
    "${env:",
    "${env:X:-",
    "$${",
    "}}",
    "~",
    "null",
    "0x",
    "1e999",
    "-",
    "#",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "<<: *a",
    "\u{0}",
    "\u{feff}",
    "é",
    "𝄞",
    "\\",
    "? ",
];

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut texts = Vec::new();
    for dir in ["configs", "configs/examples", "tests/configs/broken"] {
        for entry in std::fs::read_dir(root.join(dir))
            .expect("config dir")
            .flatten()
        {
            if entry.path().extension().is_some_and(|e| e == "yaml") {
                texts.push(std::fs::read_to_string(entry.path()).expect("read"));
            }
        }
    }
    assert!(texts.len() >= 10, "the corpus has the shipped configs");
    texts
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => {
                let f = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
                bytes.splice(at..at, f.iter().copied());
            }
            3 => {
                let end = (at + rng.below(80)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                bytes.splice(at..at, chunk);
            }
            4 => {
                let depth = rng.below(200);
                let nest = "[".repeat(depth) + &"]".repeat(depth);
                bytes.splice(at..at, nest.bytes());
            }
            _ => bytes.truncate(at),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_configs_never_panic_the_loader_or_validator() {
    // The binary's registry (collector/bin/src/main.rs) but for `delta`: mutants reach every component's
    // typed validation instead of stopping at an unknown type.
    let registry = Registry::new()
        .with_receiver(otlake_receiver_otlp::OtlpReceiverFactory)
        .with_receiver(otlake_receiver_prometheus::PrometheusReceiverFactory)
        .with_receiver(otlake_receiver_filelog::FilelogReceiverFactory)
        .with_receiver(otlake_receiver_filelog::ProcessReceiverFactory)
        .with_processor(otlake_processor_batch::BatchProcessorFactory)
        .with_processor(otlake_processor_size_limit::SizeLimitProcessorFactory)
        .with_processor(otlake_processor_sampling::SamplingProcessorFactory)
        .with_processor(otlake_processor_sampling::ProbabilisticSamplerFactory)
        .with_exporter(otlake_exporter_debug::DebugExporterFactory)
        .with_exporter(otlake_exporter_file::FileExporterFactory)
        .with_exporter(otlake_exporter_otlp::OtlpFactory)
        .with_exporter(otlake_exporter_otlp::OtlpHttpFactory);
    let corpus = corpus();
    let mut rng = Rng(0x0075_1a4e_c0ff_ee00);
    let mut parsed = 0;
    for iteration in 0..6_000 {
        let seed = &corpus[rng.below(corpus.len())];
        let text = mutate(&mut rng, seed);
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match Config::parse(&text) {
                    Ok(config) => {
                        let _ = validate(&config, &registry);
                        true
                    }
                    Err(e) => {
                        let _ = e.to_string();
                        false
                    }
                }
            }));
        match outcome {
            Ok(true) => parsed += 1,
            Ok(false) => {}
            Err(_) => panic!("iteration {iteration} panicked on:\n{text}"),
        }
    }
    // Some mutants must still be valid YAML, or the fuzzer only ever tests the YAML parser's first line.
    assert!(parsed > 300, "only {parsed} mutants parsed");
}
