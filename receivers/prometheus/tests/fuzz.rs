//! Hostile expositions never crash the parser or the mapping: a bounded, seeded mutation fuzzer over real
//! expositions (what Python's prometheus_client serves for vLLM, in both formats: tests/data) and hand-written
//! edge cases, with exposition punctuation spliced in. Each mutant is parsed in both formats and, when it
//! parses, mapped with start-time state carried across iterations. Any error is fine; a panic is a bug, and so
//! is an error that names a line the body does not have. Deterministic: a failure names its iteration. Runs in
//! the normal suite.

use std::panic::{AssertUnwindSafe, catch_unwind};

use otlake_core::test_util::fuzz::{Rng, mutate};
use otlake_receiver_prometheus::mapping::{SeriesStarts, TargetInfo, map_scrape};
use otlake_receiver_prometheus::parse::{Format, parse_bytes};
use otlake_receiver_prometheus::relabel::Relabeler;

const ITERATIONS: usize = 6_000;

const SEEDS: &[&str] = &[
    include_str!("data/vllm-text-0.0.4.prom"),
    include_str!("data/vllm-openmetrics-1.0.prom"),
    "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 3\nh_sum 1.5\nh_count 3\n",
    "# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns_sum -Inf\ns_count 0\n# TYPE c counter\nc_total{a=\"\\\"x\\n\"} 1 -5\n",
    "# TYPE c counter\nc_total 1 # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} 1 1.5\nc_created 1.7e9\n# EOF\n",
    "# TYPE q gaugehistogram\nq_bucket{le=\"+Inf\"} 2\nq_gcount 2\n# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n",
];

/// Exposition punctuation and keywords, spliced in to reach the parser's branches.
const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "\"",
    "\\",
    "\\n",
    ",",
    "=",
    " ",
    "\t",
    "\n",
    "#",
    "# ",
    "# TYPE ",
    "# HELP ",
    "# UNIT ",
    "# EOF\n",
    " # {",
    "le=\"",
    "quantile=\"",
    "+Inf",
    "-Inf",
    "NaN",
    "_total",
    "_bucket",
    "_created",
    "_count",
    "_sum",
    " counter\n",
    " histogram\n",
    " summary\n",
    " gaugehistogram\n",
    "1e309",
    "-0",
    "9223372036854775807",
    "\u{00e9}",
    "\r",
];

fn splice_fragment(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())].as_bytes();
    let at = rng.below(bytes.len() + 1);
    bytes.splice(at..at, fragment.iter().copied());
}

fn target() -> TargetInfo {
    TargetInfo {
        job: "fuzz".into(),
        instance: "127.0.0.1:1".into(),
        scheme: "http".into(),
        host: "127.0.0.1".into(),
        port: 1,
        labels: vec![("env".into(), "x".into())],
        honor_labels: false,
        honor_timestamps: true,
        sample_limit: 0,
    }
}

#[test]
fn mutated_expositions_never_panic() {
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
    let info = target();
    let honoring = TargetInfo {
        honor_labels: true,
        ..target()
    };
    let relabel = Relabeler::default();
    let mut starts = SeriesStarts::default();
    let mut rng = Rng(0x005e_ed0f_9e0f_u64);
    let mut parsed = [0usize; 2];
    for iteration in 0..ITERATIONS {
        let seed = &seeds[rng.below(seeds.len())];
        let mut body = mutate(&mut rng, seed, &seeds);
        for _ in 0..rng.below(4) {
            splice_fragment(&mut rng, &mut body);
        }
        let lines = body.iter().filter(|&&b| b == b'\n').count() + 1;
        for (i, format) in [Format::Prometheus, Format::OpenMetrics]
            .into_iter()
            .enumerate()
        {
            let target = if iteration % 2 == 0 { &info } else { &honoring };
            let result = catch_unwind(AssertUnwindSafe(|| match parse_bytes(&body, format) {
                Ok(families) => {
                    let mapped = map_scrape(
                        &families,
                        target,
                        &relabel,
                        &mut starts,
                        1_700_000_000_000_000_000 + iteration as u64,
                    );
                    (true, mapped.err().map(|e| e.to_string()))
                }
                Err(e) => {
                    assert!(
                        e.line <= lines,
                        "line {} of a {lines}-line body: {e}",
                        e.line
                    );
                    (false, None)
                }
            }));
            match result {
                Ok((ok, _)) => parsed[i] += usize::from(ok),
                Err(_) => panic!(
                    "iteration {iteration} ({format:?}) panicked on:\n{}",
                    String::from_utf8_lossy(&body)
                ),
            }
        }
    }
    // The mutants reach past the parser often enough to exercise the mapping too.
    assert!(
        parsed[0] > ITERATIONS / 60 && parsed[1] > ITERATIONS / 200,
        "{parsed:?}"
    );
}

#[test]
fn the_real_prometheus_client_expositions_parse_and_map() {
    let relabel = Relabeler::default();
    for (body, format) in [
        (SEEDS[0], Format::Prometheus),
        (SEEDS[1], Format::OpenMetrics),
    ] {
        let families = parse_bytes(body.as_bytes(), format).expect("parses");
        let (resources, counts) = map_scrape(
            &families,
            &target(),
            &relabel,
            &mut SeriesStarts::default(),
            1,
        )
        .expect("maps");
        assert!(counts.scraped > 300, "{counts:?}");
        let names: Vec<&str> = resources
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| m.name.as_str())
            .collect();
        for expected in [
            "vllm:num_requests_running",
            "vllm:prompt_tokens_total",
            "vllm:time_to_first_token_seconds",
            "vllm:e2e_request_latency_seconds",
            "vllm:kv_cache_usage_perc",
            "vllm:cache_config_info",
        ] {
            assert!(
                names.contains(&expected),
                "{format:?}: {expected} missing from {names:?}"
            );
        }
        assert!(
            names.iter().all(|n| !n.ends_with("_created")),
            "{format:?}: {names:?}"
        );
    }
}
