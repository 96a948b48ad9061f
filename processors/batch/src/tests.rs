//! Component tests of the `batch` processor, driven like the pipeline task drives it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::test_util::build_processor;
use otlake_core::test_util::{
    CollectingExporter, ProcessorHarness, batch_with_ack, sample_logs, sample_metrics,
    sample_traces,
};
use otlake_core::{
    Batch, ComponentId, DynFactory, Exporter, ExporterContext, Outcome, RequestMeta, Signal,
};
use serde_json::{Value, json};

use crate::BatchProcessorFactory;

fn harness(config: Value, signal: Signal) -> ProcessorHarness {
    let processor = build_processor(&BatchProcessorFactory, &config, signal).expect("valid config");
    ProcessorHarness::new(processor)
}

fn with_tenant(mut batch: Batch, tenant: &str) -> Batch {
    batch.meta = Arc::new(RequestMeta::from_metadata(BTreeMap::from([
        ("x-tenant".to_owned(), tenant.to_owned()),
        ("user-agent".to_owned(), format!("agent-of-{tenant}")),
    ])));
    batch
}

#[test]
fn factory_validates_defaults_and_rejects_unknown_keys() {
    assert_eq!(BatchProcessorFactory.type_name(), "batch");
    assert!(BatchProcessorFactory.validate(&Value::Null).is_ok());
    let errors = BatchProcessorFactory
        .validate(&json!({"timout": "1s"}))
        .expect_err("typo");
    assert!(errors[0].message.contains("timout"), "{errors:?}");
    let errors = BatchProcessorFactory
        .validate(&json!({"send_batch_size": 10, "send_batch_max_size": 5}))
        .expect_err("max below size");
    assert_eq!(errors[0].path, "send_batch_max_size");
}

#[tokio::test]
async fn lifecycle_built_and_dropped_or_flushed_empty() {
    let processor =
        build_processor(&BatchProcessorFactory, &Value::Null, Signal::Traces).expect("defaults");
    drop(processor);

    let mut h = harness(Value::Null, Signal::Traces);
    assert_eq!(h.next_deadline(), None);
    h.flush();
    assert!(h.take().is_empty());

    // Dropped with data pending (no flush: a crash path): the client is told to retry, never told success.
    let mut h = harness(Value::Null, Signal::Traces);
    let (batch, rx) = batch_with_ack(sample_traces(1, 3));
    h.process(batch);
    assert!(h.take().is_empty());
    drop(h);
    assert!(matches!(rx.wait().await.outcome, Outcome::Retryable { .. }));
}

#[tokio::test]
async fn export_failure_after_batching_reaches_every_merged_client() {
    let mut h = harness(json!({"send_batch_size": 9}), Signal::Logs);
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let (batch, rx) = batch_with_ack(sample_logs(1, 3));
        h.process(batch);
        receivers.push(rx);
    }
    let sent = h.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].item_count(), 9);
    assert_eq!(sent[0].acks.len(), 3);

    let (exporter, collected) = CollectingExporter::new(Outcome::retryable("table unavailable"));
    let (tx, rx) = channel("exporter", 4);
    let run = tokio::spawn(Box::new(exporter).run(
        rx,
        ExporterContext {
            id: ComponentId::new("collecting"),
        },
    ));
    for batch in sent {
        assert!(tx.send(batch).await.is_ok());
    }
    drop(tx);
    run.await.expect("joined").expect("exporter ran");
    assert_eq!(collected.item_count(), 9);
    for rx in receivers {
        let verdict = rx.wait().await;
        assert_eq!(
            verdict.outcome,
            Outcome::Retryable {
                reason: "table unavailable".into(),
                retry_after: None
            }
        );
    }
}

#[tokio::test]
async fn a_partial_rejection_before_batching_reaches_its_client_only() {
    let mut h = harness(json!({"send_batch_size": 4}), Signal::Traces);
    let (refused_some, rx_refused) = batch_with_ack(sample_traces(1, 2));
    refused_some
        .acks
        .reject_items(1, "span over max_record_bytes");
    let (clean, rx_clean) = batch_with_ack(sample_traces(1, 2));
    h.process(refused_some);
    h.process(clean);
    let sent = h.take();
    assert_eq!(sent.len(), 1);
    for batch in sent {
        batch.acks.resolve(Outcome::Delivered);
    }
    let verdict = rx_refused.wait().await;
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 1);
    assert_eq!(
        verdict.rejection_message.as_deref(),
        Some("span over max_record_bytes")
    );
    let verdict = rx_clean.wait().await;
    assert_eq!(verdict.outcome, Outcome::Delivered);
    assert_eq!(verdict.rejected_items, 0);
}

#[tokio::test]
async fn sends_on_timeout_and_not_before() {
    let mut h = harness(json!({"timeout": "1s"}), Signal::Metrics);
    let (batch, rx) = batch_with_ack(sample_metrics(2));
    h.process(batch);
    assert!(h.take().is_empty());
    let deadline = h.next_deadline().expect("a pending batch has a deadline");
    h.tick_at(deadline - Duration::from_millis(1));
    assert!(h.take().is_empty());
    h.tick_at(deadline);
    let sent = h.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].item_count(), 6);
    assert_eq!(h.next_deadline(), None);
    for batch in sent {
        batch.acks.resolve(Outcome::Delivered);
    }
    assert_eq!(rx.wait().await.outcome, Outcome::Delivered);
}

#[tokio::test]
async fn send_when_idle_sends_what_arrived_together_as_one_batch() {
    let mut h = harness(
        json!({"timeout": "1h", "send_when_idle": true}),
        Signal::Traces,
    );
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (batch, rx) = batch_with_ack(sample_traces(1, 2));
        h.process(batch);
        clients.push(rx);
    }
    assert!(
        h.take().is_empty(),
        "nothing leaves while requests keep coming"
    );
    h.idle();
    let sent = h.take();
    assert_eq!(sent.len(), 1, "the three requests travel together");
    assert_eq!(sent[0].item_count(), 6);
    assert_eq!(sent[0].acks.len(), 3);
    assert_eq!(h.next_deadline(), None, "nothing is left pending");
    for batch in sent {
        batch.acks.resolve(Outcome::Delivered);
    }
    for rx in clients {
        assert_eq!(rx.wait().await.outcome, Outcome::Delivered);
    }

    // Off (the default): idleness changes nothing, the batch waits for its timeout.
    let mut h = harness(json!({"timeout": "1h"}), Signal::Traces);
    let (batch, _rx) = batch_with_ack(sample_traces(1, 2));
    h.process(batch);
    h.idle();
    assert!(h.take().is_empty());
    assert!(h.next_deadline().is_some());
}

#[test]
fn zero_timeout_sends_every_request_at_once() {
    let mut h = harness(json!({"timeout": "0s"}), Signal::Traces);
    let (batch, _rx) = batch_with_ack(sample_traces(1, 2));
    h.process(batch);
    assert_eq!(h.take().len(), 1);
    assert_eq!(h.next_deadline(), None);
}

#[test]
fn splits_above_send_batch_max_size_and_keeps_a_small_tail() {
    let mut h = harness(
        json!({"send_batch_size": 8, "send_batch_max_size": 10}),
        Signal::Logs,
    );
    let (batch, _rx) = batch_with_ack(sample_logs(3, 5));
    h.process(batch);
    let sent = h.take();
    assert_eq!(
        sent.iter().map(Batch::item_count).collect::<Vec<_>>(),
        [10],
        "5 items stay pending, below send_batch_size"
    );
    h.flush();
    assert_eq!(
        h.take().iter().map(Batch::item_count).collect::<Vec<_>>(),
        [5]
    );
}

#[test]
fn sends_and_splits_on_encoded_bytes() {
    let one = otlake_core::Payload::from(sample_logs(1, 10)).encoded_len();
    let cap = one * 2 + one / 2;
    let mut h = harness(json!({"send_batch_max_bytes": cap}), Signal::Logs);
    for _ in 0..2 {
        let (batch, _rx) = batch_with_ack(sample_logs(1, 10));
        h.process(batch);
    }
    assert!(h.take().is_empty(), "two requests are below the byte cap");
    let (batch, _rx) = batch_with_ack(sample_logs(1, 10));
    h.process(batch);
    let sent = h.take();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|b| b.payload.encoded_len() <= cap));
    h.flush();
    let rest = h.take();
    let total: usize = sent.iter().chain(&rest).map(Batch::item_count).sum();
    assert_eq!(total, 30);
}

#[test]
fn metadata_keys_keep_tenants_apart_and_overflow_goes_alone() {
    let mut h = harness(
        json!({"metadata_keys": ["X-Tenant"], "metadata_cardinality_limit": 2, "send_batch_size": 4}),
        Signal::Traces,
    );
    for tenant in ["a", "b", "a", "b"] {
        let (batch, _rx) = batch_with_ack(sample_traces(1, 2));
        h.process(with_tenant(batch, tenant));
    }
    let sent = h.take();
    assert_eq!(sent.len(), 2);
    for batch in &sent {
        assert_eq!(batch.item_count(), 4);
        assert_eq!(batch.acks.len(), 2);
        // Only the batching key travels: the merged requests' other headers may differ.
        assert_eq!(batch.meta.metadata.len(), 1);
    }
    let tenants: Vec<_> = sent
        .iter()
        .map(|b| b.meta.metadata["x-tenant"].clone())
        .collect();
    assert_eq!(tenants, ["a", "b"]);

    // Two tenants pending fill the limit; a third is sent at once, alone, not refused.
    for tenant in ["a", "b", "c"] {
        let (batch, _rx) = batch_with_ack(sample_traces(1, 1));
        h.process(with_tenant(batch, tenant));
    }
    let sent = h.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].meta.metadata["x-tenant"], "c");
    h.flush();
    assert_eq!(h.take().len(), 2);
}

#[test]
fn flush_sends_everything_held() {
    let mut h = harness(json!({"metadata_keys": ["x-tenant"]}), Signal::Logs);
    for tenant in ["a", "b", "c"] {
        let (batch, _rx) = batch_with_ack(sample_logs(1, 2));
        h.process(with_tenant(batch, tenant));
    }
    h.flush();
    let sent = h.take();
    assert_eq!(sent.iter().map(Batch::item_count).sum::<usize>(), 6);
    assert_eq!(h.next_deadline(), None);
}

#[test]
fn a_batch_positioned_in_a_replayable_source_passes_through_unmerged_and_unsplit() {
    // Merging batch 5 of a source (already committed) with batch 6 (not) would make "skip what is committed"
    // impossible downstream; splitting would give two batches one position.
    let mut h = harness(
        json!({"send_batch_size": 4, "send_batch_max_size": 4, "timeout": "1h"}),
        Signal::Logs,
    );
    let (plain, _plain_rx) = batch_with_ack(sample_logs(1, 2));
    h.process(plain);
    let position = |sequence| otlake_core::SourcePosition {
        app_id: "otlake-filelog/filelog".into(),
        sequence,
        first_undelivered: None,
    };
    for sequence in [5, 6] {
        let (mut batch, _rx) = batch_with_ack(sample_logs(1, 6));
        batch.meta = Arc::new(RequestMeta::default().with_source(position(sequence)));
        h.process(batch);
    }
    let sent = h.take();
    assert_eq!(
        sent.iter()
            .map(|b| (b.item_count(), b.meta.source().map(|p| p.sequence)))
            .collect::<Vec<_>>(),
        [(6, Some(5)), (6, Some(6))],
        "each as it came; the unpositioned batch still waits"
    );
    h.flush();
    assert_eq!(
        h.take()
            .iter()
            .map(|b| (b.item_count(), b.meta.source().is_some()))
            .collect::<Vec<_>>(),
        [(2, false)]
    );
}
