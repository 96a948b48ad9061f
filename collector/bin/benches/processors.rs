//! Throughput of each editing processor alone, and of the GenAI sidecar's traces chain, on the shared peer
//! harness's payload: items per CPU-second of one core (the daemon's allocator, mimalloc).
//!
//! The payload is the harness's `traces.pb` / `logs.pb` (`make-payloads.py`: 100 GenAI spans of 15 attributes
//! per request, every 5th with an event; 100 log records of 12 attributes and a ~200-byte body), read from
//! `$PAYLOADS` (default `/work/shared/bench/payloads`). Each processor runs with its section of
//! `configs/examples/genai-sidecar.yaml` (`resourcedetection`: `configs/examples/resourcedetection.yaml`), built
//! by its factory as the daemon builds it. Requests arrive in wire form, as a receiver hands them on; building
//! them is outside the clock, which covers `process` and resolving what comes out (dropping it), as an
//! exporter would. The CPU time is the thread's own (`/proc/thread-self/stat`), so other work on the machine
//! does not count. The last column says what the processor did: `untouched` requests went on in wire form.
//!
//! Run: `PAYLOADS=DIR taskset -c 0 cargo bench -p otlake --bench processors` (bench/RESULTS.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use otlake_core::test_util::{batch_with_ack, build_processor};
use otlake_core::{DynProcessorFactory, Outcome, Payload, Processor, Signal};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Requests per measurement (100 items each).
const REQUESTS: usize = 3_000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn payload(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("PAYLOADS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/bench/payloads"));
    let path = dir.join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; generate the harness's payloads: python3 /work/shared/bench/make-payloads.py --out DIR --filelog-lines 0",
                path.display()
            )
        })
}

fn sections(example: &str) -> serde_json::Map<String, Value> {
    let config = otlake_service::Config::load(&repo().join("configs/examples").join(example))
        .expect("loads");
    config.processors.into_iter().collect()
}

/// This thread's CPU time in seconds (user + system), in clock ticks.
fn thread_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    // Fields after the command name (which ends with the last ')'): utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

struct Stage {
    name: &'static str,
    factory: &'static dyn DynProcessorFactory,
    config: Value,
}

fn run(label: &str, signal: Signal, stages: &[Stage], bytes: &[u8]) {
    let mut processors: Vec<Box<dyn Processor>> = stages
        .iter()
        .map(|s| {
            build_processor(s.factory, &s.config, signal)
                .unwrap_or_else(|e| panic!("{}: {e:?}", s.name))
        })
        .collect();
    let payloads: Vec<Payload> = (0..REQUESTS)
        .map(|_| Payload::from_wire(signal, bytes.to_vec().into()).expect("valid"))
        .collect();
    let items_in = payloads[0].item_count() * REQUESTS;
    let (mut untouched, mut items_out) = (0, 0);
    let (cpu, wall) = (thread_cpu(), Instant::now());
    let mut next = Vec::new();
    for payload in payloads {
        let (batch, _rx) = batch_with_ack(payload);
        let mut batches = vec![batch];
        for p in &mut processors {
            for b in batches.drain(..) {
                p.process(b, &mut next);
            }
            std::mem::swap(&mut batches, &mut next);
        }
        for b in batches {
            untouched += usize::from(b.payload.is_wire());
            items_out += b.item_count();
            b.acks.resolve(Outcome::Delivered);
        }
    }
    let (cpu, wall) = (thread_cpu() - cpu, wall.elapsed().as_secs_f64());
    // Below the clock's tick (10 ms) the CPU time reads 0.
    let per_cpu = if cpu > 0.0 {
        format!("{:.2} M", items_in as f64 / cpu / 1e6)
    } else {
        "(under a tick)".to_owned()
    };
    println!(
        "| {label} | {signal} | {per_cpu} | {:.2} | {:.2} M | {untouched} of {REQUESTS} untouched, {items_out} of {items_in} items out |",
        cpu / items_in as f64 * 1e6,
        items_in as f64 / wall / 1e6,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks rows by label.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let sidecar = sections("genai-sidecar.yaml");
    let detection = sections("resourcedetection.yaml");
    let section = |from: &serde_json::Map<String, Value>, key: &str| {
        from.get(key).cloned().unwrap_or(Value::Null)
    };
    let stage =
        |name: &'static str, factory: &'static dyn DynProcessorFactory, config: Value| Stage {
            name,
            factory,
            config,
        };
    let resource = || {
        stage(
            "resource",
            &otlake_processor_attributes::ResourceProcessorFactory,
            section(&sidecar, "resource"),
        )
    };
    let filter_stage = || {
        stage(
            "filter",
            &otlake_processor_filter::FilterProcessorFactory,
            section(&sidecar, "filter"),
        )
    };
    let genai = || {
        stage(
            "genai",
            &otlake_processor_genai::GenaiProcessorFactory,
            section(&sidecar, "genai"),
        )
    };
    let attributes = || {
        stage(
            "attributes/genai",
            &otlake_processor_attributes::AttributesProcessorFactory,
            section(&sidecar, "attributes/genai"),
        )
    };
    let redaction = || {
        stage(
            "redaction",
            &otlake_processor_redaction::RedactionProcessorFactory,
            section(&sidecar, "redaction"),
        )
    };
    let detect = || {
        stage(
            "resourcedetection",
            &otlake_processor_resourcedetection::ResourceDetectionProcessorFactory,
            section(&detection, "resourcedetection"),
        )
    };
    let traces = payload("traces.pb");
    let logs = payload("logs.pb");
    let cases: Vec<(&str, Signal, Vec<Stage>)> = vec![
        ("none (receive and resolve only)", Signal::Traces, vec![]),
        ("resource", Signal::Traces, vec![resource()]),
        ("resourcedetection", Signal::Traces, vec![detect()]),
        ("filter", Signal::Traces, vec![filter_stage()]),
        ("genai", Signal::Traces, vec![genai()]),
        ("attributes/genai", Signal::Traces, vec![attributes()]),
        ("redaction", Signal::Traces, vec![redaction()]),
        (
            "sidecar chain: resource, filter, genai, attributes/genai, redaction",
            Signal::Traces,
            vec![
                resource(),
                filter_stage(),
                genai(),
                attributes(),
                redaction(),
            ],
        ),
        ("none (receive and resolve only)", Signal::Logs, vec![]),
        ("filter", Signal::Logs, vec![filter_stage()]),
        ("genai", Signal::Logs, vec![genai()]),
        ("redaction", Signal::Logs, vec![redaction()]),
    ];
    println!(
        "| processor | signal | items per CPU-s | CPU-µs per item | items per wall-s | what it did |"
    );
    println!("|---|---|---|---|---|---|");
    for (label, signal, stages) in &cases {
        if filter.as_deref().is_some_and(|f| !label.contains(f)) {
            continue;
        }
        let bytes = if *signal == Signal::Traces {
            &traces
        } else {
            &logs
        };
        run(label, *signal, stages, bytes);
    }
}
