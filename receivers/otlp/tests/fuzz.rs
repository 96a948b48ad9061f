//! Hostile request bodies never crash the decoders: a bounded, seeded mutation fuzzer over valid protobuf and
//! OTLP/JSON requests of every signal (bit flips, cuts, splices, corrupted length prefixes, deep nesting, huge
//! varints, invalid UTF-8, JSON punctuation), fed to the public decode functions (identity, gzip and zstd
//! bodies) and, for a smaller count, to a real OTLP/HTTP endpoint. Any error is fine; a panic, or an HTTP answer
//! other than a clean status, is a bug. Deterministic: a failure names its iteration. Runs in the normal suite.

#[path = "receiver/support.rs"]
#[allow(dead_code)]
mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use http::{Method, StatusCode};
use otlake_core::test_util::{sample_logs, sample_metrics, sample_traces};
use otlake_core::{Payload, Signal};
use otlake_receiver_otlp::decode::{Format, decode};
use otlake_receiver_otlp::decompress::Encoding;
use otlake_receiver_otlp::http::body::decode_body;
use prost::Message;
use serde_json::json;

use otlake_core::test_util::fuzz::Rng;
use support::*;

const DECODE_ITERATIONS: usize = 20_000;
const HTTP_ITERATIONS: usize = 400;
const LIMIT: usize = 4 << 20;

const JSON_FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "1e999",
    "-0",
    "18446744073709551616",
    "\"NaN\"",
    "\"Infinity\"",
    "{\"a\":",
    "[[[[",
    "]]]]",
    "\"spanId\":\"zz\"",
    "\"traceId\":\"0\"",
    "\"intValue\":\"x\"",
    "\"bytesValue\":\"!!\"",
    "\"kind\":99999",
    "é",
    "\u{feff}",
];

struct Seed {
    signal: Signal,
    format: Format,
    bytes: Vec<u8>,
}

fn seeds() -> Vec<Seed> {
    let payloads = [
        Payload::from(sample_traces(2, 3)),
        Payload::from(sample_logs(2, 3)),
        Payload::from(sample_metrics(2)),
    ];
    let mut seeds = Vec::new();
    for payload in payloads {
        let signal = payload.signal();
        let json = match payload.request().expect("decoded") {
            otlake_core::ExportRequest::Traces(r) => serde_json::to_vec(r),
            otlake_core::ExportRequest::Logs(r) => serde_json::to_vec(r),
            otlake_core::ExportRequest::Metrics(r) => serde_json::to_vec(r),
        }
        .expect("seed JSON");
        // Both seeds must decode, or the fuzzer would only exercise the first error path.
        decode(signal, Format::Json, json.clone().into()).expect("JSON seed decodes");
        let protobuf = payload.encode_to_vec();
        decode(signal, Format::Protobuf, protobuf.clone().into()).expect("protobuf seed decodes");
        seeds.push(Seed {
            signal,
            format: Format::Protobuf,
            bytes: protobuf,
        });
        seeds.push(Seed {
            signal,
            format: Format::Json,
            bytes: json,
        });
    }
    seeds
}

/// A varint of `value`.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Protobuf nested `depth` deep through field 1 (length-delimited), the shape of resource → scope → span and of
/// `AnyValue` kvlists.
fn deep_protobuf(depth: usize) -> Vec<u8> {
    let mut message = Vec::new();
    for _ in 0..depth {
        let mut outer = vec![0x0a];
        outer.extend(varint(message.len() as u64));
        outer.extend(message);
        message = outer;
    }
    message
}

fn mutate(rng: &mut Rng, seeds: &[Seed], data: &mut Vec<u8>, format: Format) {
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(10) {
            // Bit flip.
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            // Truncation.
            1 => data.truncate(rng.below(len + 1)),
            // Splice in a slice of another seed.
            2 => {
                let other = &seeds[rng.below(seeds.len())].bytes;
                let start = rng.below(other.len());
                let end = start + rng.below(other.len() - start + 1);
                let at = rng.below(len + 1);
                data.splice(at..at, other[start..end].iter().copied());
            }
            // A length prefix (any byte after a length-delimited tag) made huge or small.
            3 if len > 1 => {
                let at = rng.below(len - 1);
                let replacement = if rng.below(2) == 0 {
                    varint(rng.next() >> rng.below(64))
                } else {
                    vec![rng.below(128) as u8]
                };
                data.splice(at + 1..(at + 2).min(len), replacement);
            }
            // Deep nesting.
            4 => {
                let at = rng.below(len + 1);
                let depth = 50 + rng.below(5_000);
                let nested = match format {
                    Format::Protobuf => deep_protobuf(depth),
                    Format::Json => {
                        let open = if rng.below(2) == 0 { "[" } else { "{\"a\":" };
                        open.repeat(depth).into_bytes()
                    }
                };
                data.splice(at..at, nested);
            }
            // A huge or overlong varint.
            5 => {
                let at = rng.below(len + 1);
                let mut bytes = vec![0xff; 10 + rng.below(6)];
                bytes.push(0x01);
                data.splice(at..at, bytes);
            }
            // Invalid UTF-8.
            6 => {
                let at = rng.below(len + 1);
                let bad: &[u8] =
                    [&[0xff][..], &[0xc3], &[0xed, 0xa0, 0x80], &[0xf8, 0x88]][rng.below(4)];
                data.splice(at..at, bad.iter().copied());
            }
            // JSON punctuation and odd values.
            7 => {
                let at = rng.below(len + 1);
                let fragment = JSON_FRAGMENTS[rng.below(JSON_FRAGMENTS.len())];
                data.splice(at..at, fragment.bytes());
            }
            // Duplicate a range.
            8 if len > 0 => {
                let start = rng.below(len);
                let end = start + rng.below((len - start).min(256) + 1);
                let copy = data[start..end].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, copy);
            }
            // Random bytes.
            _ => {
                let at = rng.below(len + 1);
                let noise: Vec<u8> = (0..rng.below(32)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
        }
    }
}

fn compress(encoding: Encoding, data: &[u8]) -> Vec<u8> {
    match encoding {
        Encoding::Gzip => gzip(data),
        Encoding::Zstd => zstd::encode_all(data, 1).expect("zstd"),
        _ => data.to_vec(),
    }
}

#[test]
fn mutated_bodies_decode_or_fail_cleanly() {
    let seeds = seeds();
    let mut rng = Rng(0x005e_ed0f_0714_1a4e);
    let mut ok = 0;
    for iteration in 0..DECODE_ITERATIONS {
        let seed = &seeds[rng.below(seeds.len())];
        let mut data = seed.bytes.clone();
        mutate(&mut rng, &seeds, &mut data, seed.format);
        // The signal may not match the body: decoders must cope with a trace body sent to /v1/logs.
        let signal = if rng.below(8) == 0 {
            Signal::ALL[rng.below(3)]
        } else {
            seed.signal
        };
        let format = if rng.below(16) == 0 {
            match seed.format {
                Format::Json => Format::Protobuf,
                Format::Protobuf => Format::Json,
            }
        } else {
            seed.format
        };
        let encoding = match rng.below(10) {
            0 => Encoding::Gzip,
            1 => Encoding::Zstd,
            _ => Encoding::Identity,
        };
        let mut body = compress(encoding, &data);
        if encoding != Encoding::Identity && rng.below(3) == 0 {
            // Corrupt the compressed stream itself too.
            mutate(&mut rng, &seeds, &mut body, Format::Protobuf);
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            decode_body(
                signal,
                format,
                encoding,
                &bytes::Bytes::from(body.clone()),
                LIMIT,
                |_| Ok(()),
            )
        }));
        match result {
            Ok(Ok(payload)) => {
                // Accepted in wire form: the decode a later stage does must succeed too.
                if let Err(err) = payload.request() {
                    panic!("iteration {iteration}: accepted but does not decode: {err}");
                }
                ok += 1
            }
            Ok(Err(err)) => {
                let text = err.to_string();
                assert!(!text.is_empty(), "iteration {iteration}: an empty error");
            }
            Err(_) => panic!(
                "iteration {iteration}: decoding panicked ({signal:?}, {format:?}, {encoding:?}, {} bytes)",
                body.len()
            ),
        }
    }
    // Some mutations are harmless (a flipped bit in a string): the fuzzer reached the success path too.
    assert!(
        ok > 0,
        "no mutated body decoded: the mutations are too coarse"
    );
}

#[tokio::test]
async fn mutated_bodies_over_http_get_clean_answers() {
    let seeds = seeds();
    let (outputs, _seen) = delivering_pipelines();
    let receiver = start(config(json!({})), outputs).await;
    let addr = receiver.http_addr();
    let mut rng = Rng(0x000b_adb0_d1e5);
    for iteration in 0..HTTP_ITERATIONS {
        let seed = &seeds[rng.below(seeds.len())];
        let mut data = seed.bytes.clone();
        mutate(&mut rng, &seeds, &mut data, seed.format);
        let (path, content_type) = (
            ["/v1/traces", "/v1/logs", "/v1/metrics"][rng.below(3)],
            match seed.format {
                Format::Protobuf => "application/x-protobuf",
                Format::Json => "application/json",
            },
        );
        let reply = send(
            addr,
            Method::POST,
            path,
            &[("content-type", content_type)],
            full(data),
        )
        .await;
        assert!(
            [
                StatusCode::OK,
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE
            ]
            .contains(&reply.status),
            "iteration {iteration}: {reply:?}"
        );
    }
    // Still serving.
    let reply = post_protobuf(addr, "/v1/traces", sample_traces(1, 1).encode_to_vec()).await;
    assert_eq!(reply.status, StatusCode::OK);
    receiver.stop().await.expect("clean stop");
}
