//! Exactly-once commits: a sequence is committed once per writer id, restarts read it back, concurrent
//! writers each land every acknowledged row once.

use std::collections::HashMap;

use otlake_core::Payload;
use otlake_core::Signal;
use otlake_exporter_delta::config::SchemaVersion;
use otlake_exporter_delta::location::{Location, default_writer_id};
use otlake_exporter_delta::{CommitOutcome, SinkOptions, TableSink, TableSpec, inspect};
use serde_json::json;

use crate::data::genai_traces;
use crate::harness::{Running, assert_delivered, check_spans_once};

fn spec(dir: &std::path::Path, app_id: &str) -> TableSpec {
    let location = Location::parse(dir.to_str().expect("utf-8")).expect("location");
    location.prepare().expect("prepare");
    TableSpec {
        name: "otel_spans".to_owned(),
        url: location.table_url("otel_spans").expect("url"),
        signal: Signal::Traces,
        version: SchemaVersion::V1,
        storage_options: HashMap::new(),
        app_id: app_id.to_owned(),
        options: SinkOptions::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_committed_twice_appears_once_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8");
    let batch = Payload::from(genai_traces(0, 10, 1)); // 20 spans
    let mut sink = TableSink::open(spec(dir.path(), "writer-a"))
        .await
        .expect("open");
    assert_eq!(sink.committed_source("log-a").await.expect("read"), None);

    assert_eq!(
        sink.append_positioned("log-a", 5, &batch)
            .await
            .expect("append"),
        Some(20)
    );
    let first = sink.commit().await.expect("commit");
    assert!(
        matches!(first, CommitOutcome::Committed { rows: 20, .. }),
        "{first:?}"
    );
    // The same batch again, with the same sequence (a replayed log entry): skipped.
    assert_eq!(
        sink.append_positioned("log-a", 5, &batch)
            .await
            .expect("append"),
        None
    );
    assert_eq!(sink.commit().await.expect("commit"), CommitOutcome::Empty);
    assert_eq!(
        inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("inspect")
            .rows,
        20
    );
    drop(sink);

    // A restart reads the sequence back from the table.
    let mut sink = TableSink::open(spec(dir.path(), "writer-a"))
        .await
        .expect("reopen");
    assert_eq!(sink.committed_source("log-a").await.expect("read"), Some(5));
    assert_eq!(
        sink.append_positioned("log-a", 5, &batch)
            .await
            .expect("replay"),
        None,
        "already committed"
    );
    assert_eq!(
        sink.append_positioned("log-a", 4, &batch)
            .await
            .expect("replay"),
        None,
        "older than committed"
    );
    let other = Payload::from(genai_traces(50, 10, 1));
    assert_eq!(
        sink.append_positioned("log-a", 6, &other)
            .await
            .expect("new"),
        Some(20)
    );
    assert!(matches!(
        sink.commit().await.expect("commit"),
        CommitOutcome::Committed { .. }
    ));
    // Another source has its own sequence space, and so has the writer's own app id.
    assert_eq!(sink.committed_source("log-b").await.expect("read"), None);
    assert_eq!(sink.committed_sequence(), None);

    assert_eq!(
        inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("inspect")
            .rows,
        40
    );
    check_spans_once(dir.path(), 40, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_resumes_its_own_sequence_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8");
    let config = json!({"location": location, "max_latency": "100ms"});
    for round in 0..2u64 {
        let exporter = Running::start("delta/main", config.clone());
        assert_delivered(exporter.send(genai_traces(round * 10, 3, 1)).await).await;
        exporter.stop().await.expect("clean stop");
    }
    let url = Location::parse(location)
        .expect("loc")
        .table_url("otel_spans")
        .expect("url");
    let app_id = default_writer_id(&url, "delta/main");
    let sink = TableSink::open(spec(dir.path(), &app_id))
        .await
        .expect("open");
    assert_eq!(
        sink.committed_sequence(),
        Some(2),
        "one commit per run, numbered on from the last"
    );
}

/// Three exporters with their own writer ids append to the same tables at once.
pub async fn three_concurrent_writers(location: &str, storage_options: serde_json::Value) {
    let writers: Vec<Running> = (0..3)
        .map(|w| {
            Running::start(
                &format!("delta/w{w}"),
                json!({"location": location, "max_latency": "50ms", "max_rows": 40,
                       "storage_options": storage_options}),
            )
        })
        .collect();
    let mut acks = Vec::new();
    for round in 0..8u64 {
        for (w, writer) in writers.iter().enumerate() {
            let first = (w as u64) * 1000 + round * 10;
            acks.push(writer.send(genai_traces(first, 5, 1)).await); // 10 spans
        }
    }
    for ack in acks {
        assert_delivered(ack).await;
    }
    for writer in writers {
        writer.stop().await.expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_writers_on_one_local_table_land_every_row_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8");
    three_concurrent_writers(location, json!({})).await;
    check_spans_once(dir.path(), 240, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_commit_records_every_source_in_its_window_and_a_replay_of_any_is_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().to_str().expect("utf-8");
    let batch = |first| Payload::from(genai_traces(first, 5, 1)); // 10 spans
    let mut sink = TableSink::open(spec(dir.path(), "writer-a"))
        .await
        .expect("open");
    // A window holding two sources' batches and data of no source.
    for (app_id, sequence, first) in [("log-a", 3, 0), ("log-b", 7, 10), ("log-a", 4, 20)] {
        assert_eq!(
            sink.append_positioned(app_id, sequence, &batch(first))
                .await
                .expect("append"),
            Some(10)
        );
    }
    sink.append(&batch(30)).await.expect("append");
    assert!(matches!(
        sink.commit().await.expect("commit"),
        CommitOutcome::Committed { rows: 40, .. }
    ));
    drop(sink);

    let mut sink = TableSink::open(spec(dir.path(), "writer-a"))
        .await
        .expect("reopen");
    assert_eq!(sink.committed_source("log-a").await.expect("read"), Some(4));
    assert_eq!(sink.committed_source("log-b").await.expect("read"), Some(7));
    assert_eq!(sink.committed_sequence(), Some(1), "the writer's own txn");
    for (app_id, sequence, first) in [("log-a", 3, 0), ("log-b", 7, 10), ("log-a", 4, 20)] {
        assert_eq!(
            sink.append_positioned(app_id, sequence, &batch(first))
                .await
                .expect("replay"),
            None,
            "{app_id} {sequence} is in the table"
        );
    }
    assert_eq!(
        inspect(location, "otel_spans", &HashMap::new())
            .await
            .expect("inspect")
            .rows,
        40
    );
}
