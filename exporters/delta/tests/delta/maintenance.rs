//! Compaction and vacuum, also while the exporter appends to the same table between compaction's read and its
//! commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::MemoryBudget;
use otlake_exporter_delta::{
    BUDGET_SHARE, CompactOptions, VacuumOptions, compact, inspect, prepare_compaction, vacuum,
};
use serde_json::json;

use crate::data::genai_traces;
use crate::harness::{Running, assert_delivered, check_spans_once};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_and_vacuum_keep_every_row_once_when_appends_commit_between_its_read_and_commit()
{
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

    // Compaction reads version `read` and rewrites its six files; the exporter commits six appends before the
    // compaction commits on top of them. A second compaction prepared from the same version removes the same
    // files: it must fail rather than rewrite those rows a second time.
    let prepared = prepare_compaction(&location, "otel_spans", &none, &CompactOptions::default())
        .await
        .expect("prepare");
    let rival = prepare_compaction(&location, "otel_spans", &none, &CompactOptions::default())
        .await
        .expect("prepare a rival");
    let read = prepared.report().read_version;
    assert_eq!(read, before.version);
    assert_eq!(
        (
            prepared.report().files_removed,
            prepared.report().files_added
        ),
        (6, 1),
        "{:?}",
        prepared.report()
    );
    for b in 6..12u64 {
        assert_delivered(exporter.send(genai_traces(b * 10, 5, 1)).await).await;
    }
    assert_eq!(
        inspect(&location, "otel_spans", &none)
            .await
            .expect("inspect")
            .version,
        read + 6,
        "six appends committed after the compaction's read"
    );
    let report = prepared.commit().await.expect("compact");
    assert_eq!(
        report.committed_version,
        Some(read + 7),
        "committed on top of the appends: {report:?}"
    );
    let err = rival
        .commit()
        .await
        .expect_err("the same files cannot be compacted twice");
    exporter.stop().await.expect("clean stop");
    let after = inspect(&location, "otel_spans", &none)
        .await
        .expect("inspect");
    assert_eq!(
        after.version,
        read + 7,
        "the rival committed nothing: {err}"
    );
    assert_eq!(after.rows, 120, "no row lost or doubled by compaction");
    assert_eq!(after.files, 1 + 6, "the rewrite and the six appended files");

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

    check_spans_once(dir.path(), 120, &[]);
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
    check_spans_once(dir.path(), 40, &["--schema-version", "v2"]);
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
    check_spans_once(dir.path(), 70, &[]);
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
