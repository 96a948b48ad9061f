//! The identity of Delta commits across configuration changes: what the write-ahead log committed and what the
//! exporter committed without it are told apart, so turning the log off and on again skips nothing.

use prost::Message;

use crate::crash::{id_hex, ids_in, post, start_on, traces, wal_section};
use crate::delta::delta_config;
use crate::support::Ports;

#[test]
fn turning_the_write_ahead_log_off_and_on_again_skips_and_duplicates_nothing() {
    let shared = tempfile::tempdir().expect("tempdir");
    let dir = shared.path().display().to_string();
    let with_log = delta_config(&wal_section(&shared.path().join("wal"))).replace("{dir}", &dir);
    let without_log = delta_config("").replace("{dir}", &dir);
    let ports = Ports::free();
    let mut firsts = Vec::new();
    // 2 batches through the log, 3 without it (each answered after its own commit), 5 through the same log.
    for (config, batches) in [(&with_log, 2), (&without_log, 3), (&with_log, 5)] {
        let mut daemon = start_on(config, ports);
        for _ in 0..batches {
            let first = 1 + firsts.len() as u64 * 100;
            assert!(
                post(ports.http, "/v1/traces", &traces(first).encode_to_vec()),
                "batch from {first} not acknowledged:\n{}",
                daemon.stderr()
            );
            firsts.push(first);
        }
        // A clean stop commits what the exporter holds (the log keeps anything not yet delivered).
        assert!(daemon.terminate(), "{}", daemon.stderr());
    }
    // The last run's log may still hold entries if the stop came first: one more start delivers them.
    let mut daemon = start_on(&with_log, ports);
    assert!(daemon.terminate(), "{}", daemon.stderr());

    let present = ids_in(&shared.path().join("data"), "otel_spans");
    let expected: Vec<String> = firsts
        .iter()
        .flat_map(|&first| (first..first + 10).map(id_hex))
        .collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|id| !present.contains_key(*id))
        .collect();
    let twice: Vec<(&String, &u64)> = present.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "{} of {} spans missing (first: {:?}), {} duplicated",
        missing.len(),
        expected.len(),
        missing.first(),
        twice.len()
    );
    assert_eq!(present.len(), expected.len(), "only the spans sent");
}
