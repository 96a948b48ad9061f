//! The receiver in-process, against small HTTP targets on 127.0.0.1: what a scrape sends down the pipeline,
//! what the target sees (Accept, gzip, authorization), each kind of failure as `up` = 0, the body size limit,
//! the memory budget, refused batches, and a shutdown that ends every scrape at once.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlake_core::batch::channel;
use otlake_core::{ComponentId, MemoryBudget, Outcome, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{config, gauge, next_scrape, run, start, stop};

/// One canned answer of a test target.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Answer {
    fn ok(content_type: &str, body: &str) -> Answer {
        Answer {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }
}

/// A tiny HTTP/1.1 server: answers every request with `answer(request head)` and remembers the heads.
struct Target {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn target(answer: impl Fn(&str) -> Answer + Send + Sync + 'static) -> Target {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                seen.lock().expect("lock").push(head.clone());
                let a = answer(&head);
                tokio::time::sleep(a.delay).await;
                // `X-Unsized: 1` in the answer: no Content-Length, the body ends when the connection closes
                // (as a streaming exporter's does), so only the read itself can enforce a size limit.
                let unsized_body = a.headers.iter().any(|(k, _)| k == "X-Unsized");
                let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", a.status);
                if !unsized_body {
                    out.push_str(&format!("Content-Length: {}\r\n", a.body.len()));
                }
                for (k, v) in &a.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.write_all(&a.body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Target { port, requests }
}

fn job(name: &str, port: u16, extra: &str) -> String {
    format!(
        "    - job_name: {name}\n      scrape_interval: 100ms\n      scrape_timeout: 100ms\n      static_configs: [{{ targets: [\"127.0.0.1:{port}\"] }}]\n{extra}"
    )
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[tokio::test]
async fn a_scrape_reaches_the_pipeline_with_up_and_the_request_prometheus_makes() {
    let t = target(|_| {
        Answer::ok(
            OPENMETRICS,
            "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 3\n# EOF\n",
        )
    })
    .await;
    let yaml = format!(
        "config:\n  scrape_configs:\n{}",
        job(
            "vllm",
            t.port,
            "      params: { format: [x] }\n      authorization: { credentials: tok }\n"
        )
    );
    let mut running = start(config(&yaml), MemoryBudget::new(64 << 20), 8);
    let metrics = next_scrape(&mut running.rx, "vllm").await;
    assert_eq!(gauge(&metrics, "vllm:num_requests_waiting"), 3.0);
    assert_eq!(gauge(&metrics, "up"), 1.0);
    assert_eq!(gauge(&metrics, "scrape_samples_scraped"), 1.0);
    stop(running).await;
    let head = t.requests.lock().expect("lock")[0].to_lowercase();
    assert!(head.starts_with("get /metrics?format=x "), "{head}");
    assert!(
        head.contains("accept: application/openmetrics-text;version=1.0.0"),
        "{head}"
    );
    assert!(head.contains("accept-encoding: gzip"), "{head}");
    assert!(head.contains("authorization: bearer tok"), "{head}");
    assert!(
        head.contains("x-prometheus-scrape-timeout-seconds: 0.1"),
        "{head}"
    );
}

#[tokio::test]
async fn gzip_bodies_are_read() {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(b"temperature 21.5\n").expect("write");
    let body = encoder.finish().expect("gzip");
    let t = target(move |_| Answer {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/plain; version=0.0.4".into()),
            ("Content-Encoding".into(), "gzip".into()),
        ],
        body: body.clone(),
        delay: Duration::ZERO,
    })
    .await;
    let mut running = start(
        config(&format!(
            "config:\n  scrape_configs:\n{}",
            job("g", t.port, "")
        )),
        MemoryBudget::new(64 << 20),
        8,
    );
    let metrics = next_scrape(&mut running.rx, "g").await;
    assert_eq!(gauge(&metrics, "temperature"), 21.5);
    stop(running).await;
}

#[tokio::test]
async fn every_kind_of_failure_is_up_0_with_no_samples() {
    let ok = "a 1\n";
    // Distinct series: without the limit these bodies would scrape fine, so only the limit can fail them.
    let big: String = (0..30_000).map(|i| format!("b{i} 1\n")).collect();
    let garbage = target(|_| Answer::ok("text/plain", "a{ 1\n")).await;
    let status = target(|_| Answer {
        status: 500,
        ..Answer::ok("text/plain", ok)
    })
    .await;
    let slow = target(|_| Answer {
        delay: Duration::from_secs(3),
        ..Answer::ok("text/plain", ok)
    })
    .await;
    let big_unsized = big.clone();
    let large = target(move |_| Answer::ok("text/plain", &big)).await;
    let streamed = target(move |_| {
        let mut answer = Answer::ok("text/plain", &big_unsized);
        answer.headers.push(("X-Unsized".into(), "1".into()));
        answer
    })
    .await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let yaml = format!(
        "config:\n  scrape_configs:\n{}{}{}{}{}{}",
        job("garbage", garbage.port, ""),
        job("status", status.port, ""),
        job("slow", slow.port, ""),
        job("large", large.port, "      body_size_limit: 100KB\n"),
        job("streamed", streamed.port, "      body_size_limit: 100KB\n"),
        job("dead", dead, ""),
    );
    let mut running = start(config(&yaml), MemoryBudget::new(64 << 20), 64);
    for name in ["garbage", "status", "slow", "large", "streamed", "dead"] {
        let metrics = next_scrape(&mut running.rx, name).await;
        assert_eq!(gauge(&metrics, "up"), 0.0, "{name}");
        assert_eq!(
            metrics.len(),
            4,
            "{name}: only the synthetic series: {:?}",
            metrics.iter().map(|m| &m.name).collect::<Vec<_>>()
        );
    }
    stop(running).await;
}

#[tokio::test]
async fn a_spent_memory_budget_fails_the_scrape_instead_of_growing() {
    let body: String = (0..5_000).map(|i| format!("c{i} 1\n")).collect();
    let t = target(move |_| Answer::ok("text/plain", &body)).await;
    let budget = MemoryBudget::new(1 << 20);
    let _held_elsewhere = budget.try_reserve(1 << 20).expect("fits");
    let mut running = start(
        config(&format!(
            "config:\n  scrape_configs:\n{}",
            job("m", t.port, "")
        )),
        Arc::clone(&budget),
        8,
    );
    // Without room for the body the scrape fails; with no room for the result either, nothing is sent, so the
    // test frees the budget after the first failure would have happened.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        running.rx.try_recv().is_none(),
        "nothing fits the budget, nothing is sent"
    );
    drop(_held_elsewhere);
    // A scrape that failed just before the release may still arrive (as up = 0); a later one succeeds.
    let mut ups = Vec::new();
    while ups.last() != Some(&1.0) {
        assert!(ups.len() < 10, "{ups:?}");
        ups.push(gauge(&next_scrape(&mut running.rx, "m").await, "up"));
    }
    stop(running).await;
    assert_eq!(budget.used(), 0, "every reservation was released");
}

#[tokio::test]
async fn a_slow_target_does_not_delay_another_and_shutdown_is_immediate() {
    let slow = target(|_| Answer {
        delay: Duration::from_secs(30),
        ..Answer::ok("text/plain", "a 1\n")
    })
    .await;
    let fast = target(|_| Answer::ok("text/plain", "b 2\n")).await;
    let yaml = format!(
        "config:\n  scrape_configs:\n    - job_name: slow\n      scrape_interval: 60s\n      scrape_timeout: 60s\n      static_configs: [{{ targets: [\"127.0.0.1:{}\"] }}]\n{}",
        slow.port,
        job("fast", fast.port, "")
    );
    let mut running = start(config(&yaml), MemoryBudget::new(64 << 20), 64);
    for _ in 0..3 {
        let metrics = next_scrape(&mut running.rx, "fast").await;
        assert_eq!(gauge(&metrics, "b"), 2.0);
    }
    // The slow target's scrape (if it started) is still waiting: shutdown ends it now, not in 30 s.
    stop(running).await;
}

#[tokio::test]
async fn a_refused_batch_is_not_retried_and_the_next_scrape_carries_on() {
    let t = target(|_| Answer::ok("text/plain", "a 1\n")).await;
    let mut running = start(
        config(&format!(
            "config:\n  scrape_configs:\n{}",
            job("r", t.port, "")
        )),
        MemoryBudget::new(64 << 20),
        8,
    );
    let first = tokio::time::timeout(Duration::from_secs(10), running.rx.recv())
        .await
        .expect("scrape")
        .expect("open");
    first.acks.resolve(Outcome::retryable("disk full"));
    let second = tokio::time::timeout(Duration::from_secs(10), running.rx.recv())
        .await
        .expect("scrape")
        .expect("open");
    assert!(!Arc::ptr_eq(&first.payload, &second.payload));
    second.acks.resolve(Outcome::Delivered);
    stop(running).await;
}

#[tokio::test]
async fn the_factory_validates_builds_and_the_receiver_stops_on_shutdown() {
    use otlake_core::{DynFactory, Factory, ReceiverFactory};
    use otlake_receiver_prometheus::PrometheusReceiverFactory;

    let factory = PrometheusReceiverFactory;
    assert_eq!(Factory::type_name(&factory), "prometheus");
    assert_eq!(Factory::signals(&factory), &[Signal::Metrics]);
    // The registry's path: every problem, each with its path in the section.
    let errors = DynFactory::validate(
        &factory,
        &serde_json::json!({"config": {"scrape_configs": [{"job_name": "a", "static_configs": [{"targets": ["x:0"]}]}, {"job_name": "a"}]}}),
    )
    .expect_err("invalid");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "config.scrape_configs[0].static_configs[0].targets[0]",
            "config.scrape_configs[1].job_name"
        ]
    );
    // An unsupported key in each of two jobs, and one outside them: all three at once.
    let errors = DynFactory::validate(
        &factory,
        &serde_json::json!({"config": {
        "remote_write": [{"url": "x"}],
        "scrape_configs": [
            {"job_name": "a", "kubernetes_sd_configs": [{"role": "pod"}]},
            {"job_name": "b", "relabel_configs": []},
        ]}}),
    )
    .expect_err("invalid");
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "config.scrape_configs[0].kubernetes_sd_configs",
            "config.scrape_configs[1].relabel_configs",
            "config.remote_write"
        ],
        "{errors:?}"
    );
    assert!(
        DynFactory::validate(&factory, &serde_json::Value::Null).is_err(),
        "no scrape config"
    );

    let t = target(|_| Answer::ok("text/plain", "a 1\n")).await;
    let yaml = format!("config:\n  scrape_configs:\n{}", job("life", t.port, ""));
    let value: serde_json::Value = serde_saphyr::from_str(&yaml).expect("YAML");
    let config = Factory::parse(&factory, &value).expect("valid");
    // Built and dropped without running: nothing to clean up, nothing scraped.
    drop(
        ReceiverFactory::build(&factory, &ComponentId::new("prometheus"), config.clone())
            .expect("builds"),
    );
    assert!(t.requests.lock().expect("lock").is_empty());

    let receiver =
        ReceiverFactory::build(&factory, &ComponentId::new("prometheus"), config).expect("builds");
    let mut running = run(receiver, 8);
    let metrics = next_scrape(&mut running.rx, "life").await;
    assert_eq!(gauge(&metrics, "up"), 1.0);
    let mut rx = std::mem::replace(&mut running.rx, channel("unused", 1).1);
    stop(running).await;
    // Its fan-out is gone: the pipeline sees its input close.
    while rx.try_recv().is_some() {}
    assert!(rx.recv().await.is_none());
}
