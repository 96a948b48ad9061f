//! The mapping rules on small hand-written expositions.

use super::*;
use crate::config::RelabelConfig;
use crate::parse::{Format, parse};
use otlake_core::proto::metrics::v1::Metric;

fn target() -> TargetInfo {
    TargetInfo {
        job: "vllm".into(),
        instance: "127.0.0.1:8000".into(),
        scheme: "http".into(),
        host: "127.0.0.1".into(),
        port: 8000,
        labels: vec![("cluster".into(), "test".into())],
        honor_labels: false,
        honor_timestamps: true,
        sample_limit: 0,
    }
}

const SCRAPE_NS: u64 = 1_800_000_000_000_000_000;

fn map(
    body: &str,
    format: Format,
    target: &TargetInfo,
    starts: &mut SeriesStarts,
    now: u64,
) -> Vec<ResourceMetrics> {
    let families = parse(body, format).expect("parses");
    map_scrape(&families, target, &Relabeler::default(), starts, now)
        .expect("maps")
        .0
}

/// `body` mapped as a target's first scrape (no series seen before), at `SCRAPE_NS`.
fn first_scrape(body: &str, format: Format, target: &TargetInfo) -> Vec<ResourceMetrics> {
    map(
        body,
        format,
        target,
        &mut SeriesStarts::default(),
        SCRAPE_NS,
    )
}

/// The report of a successful scrape of one sample.
fn one_sample_scraped() -> ScrapeReport {
    ScrapeReport {
        up: true,
        duration_seconds: 0.1,
        counts: SampleCounts {
            scraped: 1,
            post_relabel: 1,
        },
    }
}

fn metrics(resources: &[ResourceMetrics]) -> Vec<&Metric> {
    resources
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .collect()
}

fn find<'m>(resources: &'m [ResourceMetrics], name: &str) -> &'m Metric {
    metrics(resources)
        .into_iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn attrs(list: &[KeyValue]) -> Vec<(String, String)> {
    list.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn sum_points(metric: &Metric) -> &[NumberDataPoint] {
    match &metric.data {
        Some(metric::Data::Sum(sum)) => &sum.data_points,
        other => panic!("{} is not a sum: {other:?}", metric.name),
    }
}

fn gauge_points(metric: &Metric) -> &[NumberDataPoint] {
    match &metric.data {
        Some(metric::Data::Gauge(gauge)) => &gauge.data_points,
        other => panic!("{} is not a gauge: {other:?}", metric.name),
    }
}

fn histogram_points(metric: &Metric) -> &[HistogramDataPoint] {
    match &metric.data {
        Some(metric::Data::Histogram(h)) => &h.data_points,
        other => panic!("{} is not a histogram: {other:?}", metric.name),
    }
}

fn value(point: &NumberDataPoint) -> f64 {
    match point.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        other => panic!("{other:?}"),
    }
}

const VLLM_OPENMETRICS: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm_num_requests_running{engine="0",model_name="llama"} 9.0
# HELP vllm:prompt_tokens Number of prefill tokens processed.
# TYPE vllm:prompt_tokens counter
vllm_prompt_tokens_total{engine="0",model_name="llama"} 1203.0 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7",pod="a"} 12.0 1700000000.5
vllm_prompt_tokens_created{engine="0",model_name="llama"} 1.7e+09
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm_time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="llama"} 1.0
vllm_time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="llama"} 3.0
vllm_time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="llama"} 5.0
vllm_time_to_first_token_seconds_count{engine="0",model_name="llama"} 5.0
vllm_time_to_first_token_seconds_sum{engine="0",model_name="llama"} 7.25
vllm_time_to_first_token_seconds_created{engine="0",model_name="llama"} 1.7e+09
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.99"} 0.9
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds_sum 4.0
rpc_seconds_count 9.0
# EOF
"#;

#[test]
fn vllm_families_map_to_otlp_types_with_the_targets_resource() {
    let resources = first_scrape(VLLM_OPENMETRICS, Format::OpenMetrics, &target());
    assert_eq!(resources.len(), 1);
    let resource = attrs(&resources[0].resource.as_ref().expect("resource").attributes);
    assert_eq!(
        resource,
        pairs(&[
            ("service.name", "vllm"),
            ("service.instance.id", "127.0.0.1:8000"),
            ("server.address", "127.0.0.1"),
            ("server.port", "8000"),
            ("url.scheme", "http"),
        ])
    );
    assert_eq!(
        resources[0].scope_metrics[0]
            .scope
            .as_ref()
            .expect("scope")
            .name,
        SCOPE_NAME
    );

    let running = find(&resources, "vllm:num_requests_running");
    assert_eq!(
        running.description,
        "Number of requests in model execution batches."
    );
    let point = &gauge_points(running)[0];
    assert_eq!(value(point), 9.0);
    assert_eq!(point.time_unix_nano, SCRAPE_NS);
    assert_eq!(
        attrs(&point.attributes),
        pairs(&[
            ("cluster", "test"),
            ("engine", "0"),
            ("model_name", "llama")
        ])
    );

    let tokens = find(&resources, "vllm:prompt_tokens_total");
    let Some(metric::Data::Sum(sum)) = &tokens.data else {
        panic!("sum")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let point = &sum.data_points[0];
    assert_eq!(value(point), 1203.0);
    assert_eq!(
        point.start_time_unix_nano, 1_700_000_000_000_000_000,
        "from _created"
    );
    let exemplar = &point.exemplars[0];
    assert_eq!(exemplar.trace_id.len(), 16);
    assert_eq!(
        exemplar.span_id,
        [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
    );
    assert_eq!(exemplar.time_unix_nano, 1_700_000_000_500_000_000);
    assert_eq!(attrs(&exemplar.filtered_attributes), pairs(&[("pod", "a")]));

    let ttft = find(&resources, "vllm:time_to_first_token_seconds");
    let point = &histogram_points(ttft)[0];
    assert_eq!(point.explicit_bounds, [0.1, 0.5]);
    assert_eq!(
        point.bucket_counts,
        [1, 2, 2],
        "cumulative 1, 3, 5 → per bucket; +Inf is the overflow"
    );
    assert_eq!(point.count, 5);
    assert_eq!(point.sum, Some(7.25));
    assert_eq!(point.start_time_unix_nano, 1_700_000_000_000_000_000);

    let rpc = find(&resources, "rpc_seconds");
    let Some(metric::Data::Summary(summary)) = &rpc.data else {
        panic!("summary")
    };
    let point = &summary.data_points[0];
    assert_eq!((point.count, point.sum), (9, 4.0));
    let quantiles: Vec<(f64, f64)> = point
        .quantile_values
        .iter()
        .map(|q| (q.quantile, q.value))
        .collect();
    assert_eq!(quantiles, [(0.5, 0.2), (0.99, 0.9)]);
    assert!(
        metrics(&resources)
            .iter()
            .all(|m| !m.name.ends_with("_created"))
    );
}

#[test]
fn both_formats_give_the_same_names() {
    let text = "# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{engine=\"0\"} 5\n\
                # TYPE vllm:prompt_tokens_created gauge\nvllm:prompt_tokens_created{engine=\"0\"} 1.7e+09\n";
    let resources = first_scrape(text, Format::Prometheus, &target());
    let tokens = find(&resources, "vllm:prompt_tokens_total");
    assert_eq!(
        sum_points(tokens)[0].start_time_unix_nano,
        1_700_000_000_000_000_000,
        "the text format's `_created` gauge is the counter's start"
    );
    assert_eq!(
        metrics(&resources).len(),
        1,
        "and is not a metric of its own"
    );
}

#[test]
fn start_times_follow_first_sight_and_resets() {
    let mut starts = SeriesStarts::default();
    let body = |v: u32| {
        format!(
            "# TYPE c_total counter\nc_total {v}\n# TYPE h histogram\nh_bucket{{le=\"+Inf\"}} {v}\nh_count {v}\n"
        )
    };
    let t = [SCRAPE_NS, SCRAPE_NS + 10, SCRAPE_NS + 20, SCRAPE_NS + 30];
    let start_of = |r: &[ResourceMetrics]| {
        (
            sum_points(find(r, "c_total"))[0].start_time_unix_nano,
            histogram_points(find(r, "h"))[0].start_time_unix_nano,
        )
    };
    let first = map(&body(5), Format::Prometheus, &target(), &mut starts, t[0]);
    assert_eq!(start_of(&first), (t[0], t[0]), "first seen: its own time");
    let second = map(&body(7), Format::Prometheus, &target(), &mut starts, t[1]);
    assert_eq!(start_of(&second), (t[0], t[0]));
    let reset = map(&body(2), Format::Prometheus, &target(), &mut starts, t[2]);
    assert_eq!(
        start_of(&reset),
        (t[1], t[1]),
        "went down: restarted after the previous observation"
    );
    // A scrape without the series forgets it; it starts afresh when it returns.
    map(
        "other 1\n",
        Format::Prometheus,
        &target(),
        &mut starts,
        t[3],
    );
    assert!(
        starts.is_empty(),
        "gauges need no start; the counter and histogram were forgotten"
    );
    let back = map(
        &body(9),
        Format::Prometheus,
        &target(),
        &mut starts,
        t[3] + 10,
    );
    assert_eq!(start_of(&back), (t[3] + 10, t[3] + 10));
}

#[test]
fn target_labels_win_unless_honor_labels() {
    let body = "m{job=\"scraped\",cluster=\"theirs\",instance=\"10.0.0.9:9100\"} 1\n";
    let resources = first_scrape(body, Format::Prometheus, &target());
    assert_eq!(resources.len(), 1);
    let point = &gauge_points(find(&resources, "m"))[0];
    assert_eq!(
        attrs(&point.attributes),
        pairs(&[
            ("cluster", "test"),
            ("exported_cluster", "theirs"),
            ("exported_instance", "10.0.0.9:9100"),
            ("exported_job", "scraped")
        ])
    );

    let honoring = TargetInfo {
        honor_labels: true,
        ..target()
    };
    let resources = first_scrape(body, Format::Prometheus, &honoring);
    // The scraped job and instance make a resource of their own; the target's keeps the synthetic series.
    let resource = attrs(&resources[0].resource.as_ref().expect("resource").attributes);
    assert_eq!(
        resource[..4],
        pairs(&[
            ("service.name", "scraped"),
            ("service.instance.id", "10.0.0.9:9100"),
            ("server.address", "10.0.0.9"),
            ("server.port", "9100")
        ])[..]
    );
    let point = &gauge_points(find(&resources, "m"))[0];
    assert_eq!(attrs(&point.attributes), pairs(&[("cluster", "theirs")]));
}

#[test]
fn relabel_rules_drop_samples_and_labels_and_are_counted() {
    let body = "vllm:a{engine=\"0\",pod=\"p\"} 1\nvllm:b 2\nprocess_cpu_seconds_total 3\n";
    let families = parse(body, Format::Prometheus).expect("parses");
    let rules = Relabeler::new(&[
        RelabelConfig {
            source_labels: vec!["__name__".into()],
            regex: "vllm:.*".into(),
            action: Some("keep".into()),
            ..Default::default()
        },
        RelabelConfig {
            regex: "pod".into(),
            action: Some("labeldrop".into()),
            ..Default::default()
        },
    ])
    .expect("valid");
    let (resources, counts) = map_scrape(
        &families,
        &target(),
        &rules,
        &mut SeriesStarts::default(),
        SCRAPE_NS,
    )
    .expect("maps");
    assert_eq!(
        counts,
        SampleCounts {
            scraped: 3,
            post_relabel: 2
        }
    );
    let names: Vec<&str> = metrics(&resources)
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["vllm:a", "vllm:b"]);
    assert_eq!(
        attrs(&gauge_points(find(&resources, "vllm:a"))[0].attributes),
        pairs(&[("cluster", "test"), ("engine", "0")])
    );
}

#[test]
fn target_info_becomes_resource_attributes() {
    let body = "# TYPE target info\ntarget_info{k8s_pod_name=\"vllm-0\",deployment_environment=\"prod\"} 1\nup_time 1\n# EOF\n";
    let resources = first_scrape(body, Format::OpenMetrics, &target());
    let resource = attrs(&resources[0].resource.as_ref().expect("resource").attributes);
    assert!(
        resource.contains(&("k8s_pod_name".into(), "vllm-0".into())),
        "{resource:?}"
    );
    assert!(resource.contains(&("deployment_environment".into(), "prod".into())));
    assert!(metrics(&resources).iter().all(|m| m.name != "target_info"));
}

#[test]
fn contradictions_fail_the_scrape_with_their_line() {
    let cases = [
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 6\n",
            3,
            "must not go down",
        ),
        ("a{x=\"1\"} 1\nb 2\na{x=\"1\"} 3\n", 3, "repeats a series"),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n",
            3,
            "repeats a series",
        ),
        (
            "# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_count 4\n",
            2,
            "fewer than its buckets",
        ),
    ];
    for (body, line, words) in cases {
        let families = parse(body, Format::Prometheus).expect("parses");
        let err = map_scrape(
            &families,
            &target(),
            &Relabeler::default(),
            &mut SeriesStarts::default(),
            SCRAPE_NS,
        )
        .expect_err(body);
        let MapError::Invalid { line: got, message } = &err else {
            panic!("{err}")
        };
        assert_eq!(*got, line, "{body:?}: {err}");
        assert!(message.contains(words), "{body:?}: {err}");
    }
}

#[test]
fn sample_timestamps_are_honored_unless_told_otherwise() {
    let body = "a 1 1700000000123\n";
    let resources = first_scrape(body, Format::Prometheus, &target());
    assert_eq!(
        gauge_points(find(&resources, "a"))[0].time_unix_nano,
        1_700_000_000_123_000_000
    );
    let ignoring = TargetInfo {
        honor_timestamps: false,
        ..target()
    };
    let resources = first_scrape(body, Format::Prometheus, &ignoring);
    assert_eq!(
        gauge_points(find(&resources, "a"))[0].time_unix_nano,
        SCRAPE_NS
    );
}

#[test]
fn a_histogram_without_inf_bucket_takes_its_count_and_types_without_otlp_peers_are_mapped() {
    let body = "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_count 3\nh_sum 4\n\
                # TYPE q gaugehistogram\nq_bucket{le=\"1\"} 1\nq_bucket{le=\"+Inf\"} 2\nq_gcount 2\nq_gsum 1\n\
                # TYPE s stateset\ns{s=\"a\"} 1\n# TYPE i info\ni_info{v=\"1\"} 1\n# EOF\n";
    let resources = first_scrape(body, Format::OpenMetrics, &target());
    let point = &histogram_points(find(&resources, "h"))[0];
    assert_eq!(
        (point.bucket_counts.as_slice(), point.count),
        ([2, 1].as_slice(), 3)
    );
    assert_eq!(gauge_points(find(&resources, "q_bucket")).len(), 2);
    assert_eq!(gauge_points(find(&resources, "q_gcount")).len(), 1);
    let Some(metric::Data::Sum(stateset)) = &find(&resources, "s").data else {
        panic!("sum")
    };
    assert!(!stateset.is_monotonic);
    assert_eq!(sum_points(find(&resources, "i_info")).len(), 1);
}

#[test]
fn sample_limit_fails_the_scrape() {
    let limited = TargetInfo {
        sample_limit: 1,
        ..target()
    };
    let families = parse("a 1\nb 2\n", Format::Prometheus).expect("parses");
    let err = map_scrape(
        &families,
        &limited,
        &Relabeler::default(),
        &mut SeriesStarts::default(),
        SCRAPE_NS,
    )
    .expect_err("2 > 1");
    assert_eq!(
        err,
        MapError::SampleLimit {
            samples: 2,
            limit: 1
        }
    );
}

#[test]
fn synthetic_series_join_the_targets_resource() {
    let info = target();
    let report = ScrapeReport {
        up: false,
        duration_seconds: 0.25,
        counts: SampleCounts::default(),
    };
    let failed = request(
        &info,
        Vec::new(),
        synthetic_metrics(&info, &report, SCRAPE_NS),
    );
    assert_eq!(failed.resource_metrics.len(), 1);
    let resources = &failed.resource_metrics;
    assert_eq!(value(&gauge_points(find(resources, "up"))[0]), 0.0);
    assert_eq!(
        value(&gauge_points(find(resources, "scrape_duration_seconds"))[0]),
        0.25
    );
    assert_eq!(
        attrs(&gauge_points(find(resources, "up"))[0].attributes),
        pairs(&[("cluster", "test")])
    );

    let scraped = first_scrape("a 1\n", Format::Prometheus, &info);
    let report = one_sample_scraped();
    let scraped = request(&info, scraped, synthetic_metrics(&info, &report, SCRAPE_NS));
    assert_eq!(
        scraped.resource_metrics.len(),
        1,
        "the synthetic series share the target's resource"
    );
    let names: Vec<&str> = metrics(&scraped.resource_metrics)
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "a",
            "up",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling"
        ]
    );
}

#[test]
fn otel_scope_labels_become_the_scope() {
    // The same series in two scopes is two series, not a repeat.
    let body = "a{otel_scope_name=\"vllm.engine\",otel_scope_version=\"0.9\",k=\"v\"} 1\nb 2\n\
                a{otel_scope_name=\"other\",k=\"v\"} 3\n";
    let resources = first_scrape(body, Format::Prometheus, &target());
    let scopes: Vec<(String, String, Vec<String>)> = resources[0]
        .scope_metrics
        .iter()
        .map(|s| {
            let scope = s.scope.as_ref().expect("scope");
            (
                scope.name.clone(),
                scope.version.clone(),
                s.metrics.iter().map(|m| m.name.clone()).collect(),
            )
        })
        .collect();
    assert_eq!(
        scopes,
        [
            ("vllm.engine".into(), "0.9".into(), vec!["a".to_string()]),
            ("other".into(), String::new(), vec!["a".to_string()]),
            (
                SCOPE_NAME.into(),
                env!("CARGO_PKG_VERSION").into(),
                vec!["b".to_string()]
            ),
        ]
    );
    assert_eq!(
        attrs(&gauge_points(find(&resources, "a"))[0].attributes),
        pairs(&[("cluster", "test"), ("k", "v")])
    );

    // Only scoped series: the synthetic ones still get the receiver's scope.
    let info = target();
    let scoped = first_scrape("a{otel_scope_name=\"x\"} 1\n", Format::Prometheus, &info);
    let report = one_sample_scraped();
    let request = request(&info, scoped, synthetic_metrics(&info, &report, SCRAPE_NS));
    let own = request.resource_metrics[0]
        .scope_metrics
        .iter()
        .find(|s| s.scope.as_ref().is_some_and(|s| s.name == SCOPE_NAME))
        .expect("the receiver's scope");
    assert_eq!(own.metrics[0].name, "up");
}
