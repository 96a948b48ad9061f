//! Compaction and vacuum, also while the exporter writes to the same table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::MemoryBudget;
use otlake_exporter_delta::{
    BUDGET_SHARE, CompactOptions, VacuumOptions, compact, inspect, vacuum,
};
use serde_json::json;

use crate::data::genai_traces;
use crate::harness::{Running, assert_delivered, check_tables};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_keep_every_row_while_the_exporter_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    let none = HashMap::new();
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "50ms"}),
    );
    // Six commits, so six small files.
    for b in 0..6u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }
    let before = inspect(&location, "otel_spans", &none)
        .await
        .expect("inspect");
    assert_eq!((before.files, before.rows), (6, 60));

    let dry = compact(
        &location,
        "otel_spans",
        &none,
        &CompactOptions {
            dry_run: true,
            ..CompactOptions::default()
        },
    )
    .await
    .expect("dry run");
    assert_eq!((dry.files_removed, dry.committed_version), (6, None));
    assert_eq!(
        inspect(&location, "otel_spans", &none)
            .await
            .expect("inspect"),
        before
    );

    // Compact while the exporter keeps appending.
    let writer = tokio::spawn(async move {
        for b in 6..12u64 {
            assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
        }
        exporter
    });
    let report = compact(&location, "otel_spans", &none, &CompactOptions::default())
        .await
        .expect("compact");
    assert!(report.files_removed >= 6, "{report:?}");
    assert_eq!(report.files_added, 1, "{report:?}");
    assert!(report.committed_version.is_some());
    let exporter = writer.await.expect("writer");
    exporter.stop().await.expect("clean stop");
    let after = inspect(&location, "otel_spans", &none)
        .await
        .expect("inspect");
    assert_eq!(after.rows, 120, "no row lost or doubled by compaction");
    assert!(after.files < 12, "{after:?}");

    // The compacted files are unreferenced now; a retention of zero lets vacuum delete them.
    let options = VacuumOptions {
        retention: Some(Duration::ZERO),
        enforce_retention: false,
        dry_run: true,
    };
    let listed = vacuum(&location, "otel_spans", &none, &options)
        .await
        .expect("vacuum dry run");
    assert!(
        listed.files_deleted.len() >= report.files_removed,
        "{listed:?}"
    );
    let deleted = vacuum(
        &location,
        "otel_spans",
        &none,
        &VacuumOptions {
            dry_run: false,
            ..options
        },
    )
    .await
    .expect("vacuum");
    assert_eq!(deleted.files_deleted.len(), listed.files_deleted.len());
    assert_eq!(
        inspect(&location, "otel_spans", &none)
            .await
            .expect("inspect")
            .rows,
        120
    );

    let expect = dir.path().join("expect.json");
    std::fs::write(&expect, br#"{"unique": ["spans"]}"#).expect("write");
    check_tables(
        dir.path(),
        &[
            "--tables",
            "spans",
            "--expect-spans",
            "120",
            "--expect-json",
            expect.to_str().expect("utf-8"),
            "--quiet",
        ],
    );
}

#[tokio::test]
async fn vacuum_refuses_a_short_retention_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "50ms"}),
    );
    assert_delivered(exporter.send(genai_traces(0, 1, 1)).await).await;
    exporter.stop().await.expect("clean stop");
    let options = VacuumOptions {
        retention: Some(Duration::from_secs(60)),
        ..VacuumOptions::default()
    };
    let err = vacuum(&location, "otel_spans", &HashMap::new(), &options)
        .await
        .expect_err("too short");
    assert!(err.to_string().contains("retention"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_of_a_partitioned_v2_table_keeps_rows_and_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    let none = HashMap::new();
    let config = json!({"location": location, "schema_version": "v2", "max_latency": "50ms"});
    let exporter = Running::start("delta", config);
    for b in 0..4u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }
    exporter.stop().await.expect("clean stop");
    let report = compact(&location, "otel_spans", &none, &CompactOptions::default())
        .await
        .expect("compact");
    assert_eq!(
        (report.files_removed, report.files_added),
        (4, 1),
        "{report:?}"
    );
    let after = inspect(&location, "otel_spans", &none)
        .await
        .expect("inspect");
    assert_eq!((after.files, after.rows), (1, 40));
    let expect = dir.path().join("expect.json");
    std::fs::write(&expect, br#"{"unique": ["spans"]}"#).expect("write");
    check_tables(
        dir.path(),
        &[
            "--schema-version",
            "v2",
            "--tables",
            "spans",
            "--expect-spans",
            "40",
            "--expect-json",
            expect.to_str().expect("utf-8"),
            "--quiet",
        ],
    );
}

/// `compaction: {interval, min_files}` in the exporter's config: the exporter itself rewrites its small files
/// while it runs, and every row stays there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_rewrites_small_files_while_the_exporter_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    let none = HashMap::new();
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "50ms",
               "compaction": {"interval": "1s", "min_files": 2}}),
    );
    // Six commits, six small files; the schedule compacts them into fewer while the exporter keeps running.
    for b in 0..6u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let compacted = loop {
        let info = inspect(&location, "otel_spans", &none)
            .await
            .expect("inspect");
        if info.files < 6 || tokio::time::Instant::now() > deadline {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        compacted.files < 6,
        "no background compaction within 60 s: {compacted:?}"
    );
    assert_eq!(compacted.rows, 60, "{compacted:?}");
    // Still writing after its compaction commits.
    assert_delivered(exporter.send(genai_traces(60, 5, 1)).await).await;
    exporter.stop().await.expect("clean stop");
    let expect = dir.path().join("expect.json");
    std::fs::write(&expect, br#"{"unique": ["spans"]}"#).expect("write");
    check_tables(
        dir.path(),
        &[
            "--tables",
            "spans",
            "--expect-spans",
            "70",
            "--quiet",
            "--expect-json",
            expect.to_str().expect("utf-8"),
        ],
    );
}

#[tokio::test]
async fn compaction_within_a_memory_budget_keeps_bins_to_its_share_and_defers_what_does_not_fit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8").to_owned();
    let none = HashMap::new();
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "50ms"}),
    );
    for b in 0..6u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }
    exporter.stop().await.expect("clean stop");
    let before = inspect(&location, "otel_spans", &none)
        .await
        .expect("inspect");
    assert_eq!((before.files, before.rows), (6, 60));
    let largest_two = 2 * before.bytes / 6 + before.bytes / 12;

    // A budget busy with requests: nothing is rewritten now, and nothing is held afterwards.
    let budget = MemoryBudget::new(BUDGET_SHARE * largest_two);
    let busy = budget.try_reserve(budget.limit()).expect("all of it");
    let options = CompactOptions {
        memory: Some(Arc::clone(&budget)),
        ..CompactOptions::default()
    };
    let deferred = compact(&location, "otel_spans", &none, &options)
        .await
        .expect("compact");
    assert!(deferred.bins_deferred > 0, "{deferred:?}");
    assert_eq!(
        (deferred.files_removed, deferred.committed_version),
        (0, None)
    );
    drop(busy);
    assert_eq!(budget.used(), 0);

    // A free budget: bins of at most a quarter of its limit (about two files each), so several new files.
    let report = compact(&location, "otel_spans", &none, &options)
        .await
        .expect("compact");
    assert_eq!(report.bins_deferred, 0, "{report:?}");
    assert!(
        report.files_added >= 2,
        "bins capped by the budget: {report:?}"
    );
    assert_eq!(budget.used(), 0, "the reservation ends with the rewrite");
    let after = inspect(&location, "otel_spans", &none)
        .await
        .expect("inspect");
    assert_eq!(after.rows, 60);
    assert!(after.files < 6, "{after:?}");
}
