//! The format rules, one by one, on hand-written expositions (one per format covering every rule at once, then
//! each error case alone with the line it must name).

use super::*;

/// Every rule of the text format 0.0.4 that a valid exposition can exercise.
const TEXT_EXPOSITION: &str = r#"# A free comment, ignored.
#another comment without a space
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\nSecond line \\ with a backslash and \t kept.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="llama",engine="0"} 1027
vllm:prompt_tokens_total{engine="1",model_name="llama",} 12 1700000000123

   # TYPE http_seconds histogram
http_seconds_bucket{le="0.1"} 1
http_seconds_bucket{le="+Inf"} 3
http_seconds_sum 1.5
http_seconds_count 3
# TYPE rpc summary
rpc{quantile="0.5"} NaN
rpc{quantile="0.99"} +Inf
rpc_sum -Inf
rpc_count 0
# TYPE temperature gauge
temperature{ room = "kitchen" , note="say \"hi\"\nbye \\ \q" }	-1.5e3	  -5
untyped_metric 7
# TYPE weird untyped
weird{} .5
big 1E+3
tiny -0.000001 +12
crlf 4
"#;

#[test]
fn the_text_format_accepts_every_rule() {
    let body = TEXT_EXPOSITION.replace("crlf 4\n", "crlf 4\r\n");
    let families = parse(&body, Format::Prometheus).expect("valid");
    let names: Vec<(&str, MetricType)> = families.iter().map(|f| (f.name, f.kind)).collect();
    assert_eq!(
        names,
        [
            ("vllm:prompt_tokens_total", MetricType::Counter),
            ("http_seconds", MetricType::Histogram),
            ("rpc", MetricType::Summary),
            ("temperature", MetricType::Gauge),
            ("untyped_metric", MetricType::Unknown),
            ("weird", MetricType::Unknown),
            ("big", MetricType::Unknown),
            ("tiny", MetricType::Unknown),
            ("crlf", MetricType::Unknown),
        ]
    );
    let counter = &families[0];
    assert_eq!(
        counter.help.as_deref(),
        Some("Number of prefill tokens processed.\nSecond line \\ with a backslash and \\t kept.")
    );
    assert_eq!(counter.samples.len(), 2);
    assert_eq!(counter.samples[0].label("model_name"), Some("llama"));
    assert_eq!(counter.samples[0].value, 1027.0);
    assert_eq!(counter.samples[0].timestamp_ns, None);
    assert_eq!(counter.samples[0].line, 5);
    assert_eq!(
        counter.samples[1].label("engine"),
        Some("1"),
        "trailing comma accepted"
    );
    assert_eq!(
        counter.samples[1].timestamp_ns,
        Some(1_700_000_000_123_000_000),
        "milliseconds"
    );

    let histogram = &families[1];
    let suffixes: Vec<Suffix> = histogram.samples.iter().map(|s| s.suffix).collect();
    assert_eq!(
        suffixes,
        [Suffix::Bucket, Suffix::Bucket, Suffix::Sum, Suffix::Count]
    );
    assert_eq!(histogram.samples[1].label("le"), Some("+Inf"));

    let summary = &families[2];
    assert!(summary.samples[0].value.is_nan());
    assert_eq!(summary.samples[1].value, f64::INFINITY);
    assert_eq!(summary.samples[2].value, f64::NEG_INFINITY);

    let gauge = &families[3].samples[0];
    assert_eq!(gauge.label("room"), Some("kitchen"), "blanks inside braces");
    assert_eq!(
        gauge.label("note"),
        Some("say \"hi\"\nbye \\ \\q"),
        "escapes; an unknown one kept"
    );
    assert_eq!(gauge.value, -1500.0);
    assert_eq!(
        gauge.timestamp_ns,
        Some(-5_000_000),
        "tabs and runs of blanks; a negative timestamp"
    );
    assert_eq!(families[5].samples[0].value, 0.5);
    assert_eq!(families[6].samples[0].value, 1000.0);
    assert_eq!(
        families[7].samples[0].timestamp_ns,
        Some(12_000_000),
        "a `+` timestamp"
    );
    assert_eq!(families[8].samples[0].value, 4.0, "CRLF line end");
}

/// Every rule of OpenMetrics 1.0 that a valid exposition can exercise.
const OPENMETRICS_EXPOSITION: &str = r#"# HELP vllm:prompt_tokens Number of prefill tokens processed.
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{model_name="llama",engine="0"} 1027.0 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"} 12.0 1700000000.5
vllm:prompt_tokens_created{model_name="llama",engine="0"} 1.7e+09
# HELP latency_seconds A \"quoted\" help\nwith a newline.
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.5"} 2 1700000001.25
latency_seconds_bucket{le="+Inf"} 5 # {} 9.5
latency_seconds_sum 12.5
latency_seconds_count 5
latency_seconds_created 1700000000.0
# TYPE queue gaugehistogram
queue_bucket{le="1"} 1
queue_bucket{le="+Inf"} 2
queue_gcount 2
queue_gsum 1.5
# TYPE build info
build_info{version="1.2"} 1
# TYPE state stateset
state{state="a"} 1
state{state="b"} 0
# TYPE mystery unknown
mystery 3
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.2
rpc_seconds_sum 4
rpc_seconds_count 9
# HELP empty_help
no_metadata{a="b"} -Inf
# EOF
"#;

#[test]
fn openmetrics_accepts_every_rule() {
    let families = parse(OPENMETRICS_EXPOSITION, Format::OpenMetrics).expect("valid");
    let names: Vec<(&str, MetricType)> = families.iter().map(|f| (f.name, f.kind)).collect();
    assert_eq!(
        names,
        [
            ("vllm:prompt_tokens", MetricType::Counter),
            ("latency_seconds", MetricType::Histogram),
            ("queue", MetricType::GaugeHistogram),
            ("build", MetricType::Info),
            ("state", MetricType::StateSet),
            ("mystery", MetricType::Unknown),
            ("rpc_seconds", MetricType::Summary),
            ("empty_help", MetricType::Unknown),
            ("no_metadata", MetricType::Unknown),
        ]
    );
    let total = &families[0].samples[0];
    assert_eq!(total.suffix, Suffix::Total);
    let exemplar = total.exemplar.as_ref().expect("exemplar");
    assert_eq!(exemplar.value, 12.0);
    assert_eq!(
        exemplar.timestamp_ns,
        Some(1_700_000_000_500_000_000),
        "exact decimal seconds"
    );
    assert_eq!(exemplar.labels.len(), 2);
    assert_eq!(families[0].samples[1].suffix, Suffix::Created);
    assert_eq!(families[0].samples[1].value, 1.7e9);

    let histogram = &families[1];
    assert_eq!(
        histogram.help.as_deref(),
        Some("A \"quoted\" help\nwith a newline.")
    );
    assert_eq!(histogram.unit, Some("seconds"));
    assert_eq!(
        histogram.samples[0].timestamp_ns,
        Some(1_700_000_001_250_000_000)
    );
    let empty = histogram.samples[1]
        .exemplar
        .as_ref()
        .expect("exemplar with no labels");
    assert!(empty.labels.is_empty());
    assert_eq!(empty.timestamp_ns, None);
    assert_eq!(histogram.samples[4].suffix, Suffix::Created);

    let gauge_histogram: Vec<Suffix> = families[2].samples.iter().map(|s| s.suffix).collect();
    assert_eq!(
        gauge_histogram,
        [Suffix::Bucket, Suffix::Bucket, Suffix::GCount, Suffix::GSum]
    );
    assert_eq!(families[3].samples[0].suffix, Suffix::Info);
    assert_eq!(families[4].samples.len(), 2);
    assert_eq!(families[7].help.as_deref(), Some(""));
    assert_eq!(families[8].samples[0].value, f64::NEG_INFINITY);
}

#[test]
fn openmetrics_may_end_without_the_final_newline() {
    let families = parse("a 1\n# EOF", Format::OpenMetrics).expect("valid");
    assert_eq!(families.len(), 1);
}

#[test]
fn the_content_type_picks_the_format() {
    let om = Some("application/openmetrics-text; version=1.0.0; charset=utf-8");
    assert_eq!(Format::from_content_type(om), Format::OpenMetrics);
    assert_eq!(
        Format::from_content_type(Some("text/plain; version=0.0.4")),
        Format::Prometheus
    );
    assert_eq!(Format::from_content_type(None), Format::Prometheus);
}

#[test]
fn an_invalid_utf8_body_names_its_line() {
    let err = parse_bytes(b"a 1\nb 2\nc\xff 3\n", Format::Prometheus).expect_err("not UTF-8");
    assert_eq!(err.line, 3);
}

/// `(body, line, words the message must contain)` for text-format bodies that must be refused.
const TEXT_ERRORS: &[(&str, usize, &str)] = &[
    ("a 1\n1b 2\n", 2, "metric name"),
    ("a{b=\"c\" 1\n", 1, "`,` or `}`"),
    ("a{b=\"c} 1\n", 1, "unterminated"),
    ("a{b=c} 1\n", 1, "`\"`"),
    ("a{1b=\"c\"} 1\n", 1, "label name"),
    ("a{b=\"c\",b=\"d\"} 1\n", 1, "twice"),
    ("a{b=\"c\",,} 1\n", 1, "label name"),
    ("a one\n", 1, "not a sample value"),
    ("a 0x10\n", 1, "not a sample value"),
    ("a\n", 1, "space before the value"),
    ("a 1 1.5\n", 1, "not a timestamp"),
    ("a 1 2 3\n", 1, "unexpected"),
    ("a 1 # {x=\"y\"} 1\n", 1, "unexpected"),
    ("# TYPE a counter\n# TYPE a gauge\na 1\n", 2, "second TYPE"),
    ("# HELP a x\n# HELP a y\n", 2, "second HELP"),
    ("a 1\n# TYPE a gauge\n", 2, "after its samples"),
    ("# TYPE a gaugehistogram\n", 1, "unknown metric type"),
    ("# TYPE a\n", 1, "unknown metric type"),
    ("# TYPE 1a counter\n", 1, "not a metric name"),
    ("# TYPE h histogram\nh_bucket 1\n", 2, "no `le` label"),
    (
        "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
        2,
        "not a number",
    ),
    ("# TYPE s summary\ns 1\n", 2, "no `quantile` label"),
    ("# TYPE h histogram\nh 1\n", 2, "does not fit"),
];

#[test]
fn the_text_format_refuses_malformed_lines_with_their_number() {
    for (body, line, words) in TEXT_ERRORS {
        let err = parse(body, Format::Prometheus).expect_err(body);
        assert_eq!(err.line, *line, "{body:?}: {err}");
        assert!(err.message.contains(words), "{body:?}: {err}");
    }
}

/// `(body, line, words)` for OpenMetrics bodies that must be refused.
const OPENMETRICS_ERRORS: &[(&str, usize, &str)] = &[
    ("a 1\n", 0, "EOF"),
    ("a 1\n\n# EOF\n", 2, "empty line"),
    ("a 1\n# EOF\nb 2\n", 3, "after `# EOF`"),
    ("# EOF\n\n", 2, "after `# EOF`"),
    (
        "# a comment\na 1\n# EOF\n",
        1,
        "not a HELP, TYPE, UNIT or EOF",
    ),
    ("#TYPE a gauge\n# EOF\n", 1, "not a HELP, TYPE, UNIT or EOF"),
    ("# FOO a b\n# EOF\n", 1, "not a HELP, TYPE, UNIT or EOF"),
    ("a  1\n# EOF\n", 1, "exactly one space"),
    ("a 1 \n# EOF\n", 1, "exactly one space"),
    ("a\t1\n# EOF\n", 1, "a space before the value"),
    ("a{b=\"c\",} 1\n# EOF\n", 1, "label name"),
    ("a{b = \"c\"} 1\n# EOF\n", 1, "`=`"),
    ("a{b=\"\\q\"} 1\n# EOF\n", 1, "invalid escape"),
    ("# HELP a \\q\n# EOF\n", 1, "invalid escape"),
    ("# TYPE a untyped\n# EOF\n", 1, "unknown metric type"),
    ("# TYPE a counter\na 1\n# EOF\n", 2, "does not fit"),
    ("# TYPE a gauge\na 1\nb 1\na 2\n# EOF\n", 4, "interleaved"),
    ("a 1\n# TYPE a gauge\n# EOF\n", 2, "after its samples"),
    (
        "# TYPE a_bytes gauge\n# UNIT a_bytes seconds\n# EOF\n",
        2,
        "not a suffix",
    ),
    ("# UNIT a\n# EOF\n", 1, "no value"),
    (
        "# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n",
        2,
        "may not carry an exemplar",
    ),
    (
        "# TYPE c counter\nc_total 1 # {a=\"b\"}\n# EOF\n",
        2,
        "a space before the exemplar value",
    ),
    (
        "# TYPE c counter\nc_total 1 # 1\n# EOF\n",
        2,
        "exemplar label set",
    ),
    ("a 1 1700000000 # {a=\"b\"} 1\n# EOF\n", 1, "may not carry"),
];

#[test]
fn openmetrics_refuses_malformed_lines_with_their_number() {
    for (body, line, words) in OPENMETRICS_ERRORS {
        let err = parse(body, Format::OpenMetrics).expect_err(body);
        assert_eq!(err.line, *line, "{body:?}: {err}");
        assert!(err.message.contains(words), "{body:?}: {err}");
    }
}

#[test]
fn an_exemplar_with_too_many_label_characters_is_refused() {
    let long = "x".repeat(MAX_EXEMPLAR_LABEL_CHARS);
    let body = format!("# TYPE c counter\nc_total 1 # {{a=\"{long}\"}} 1\n# EOF\n");
    let err = parse(&body, Format::OpenMetrics).expect_err("129 characters");
    assert!(err.message.contains("at most 128"), "{err}");
}

#[test]
fn error_messages_never_echo_a_long_line_whole() {
    let long = "v".repeat(10_000);
    let err = parse(&format!("a {long}\n"), Format::Prometheus).expect_err("bad value");
    assert!(err.message.len() < 200, "{}", err.message.len());
}

#[test]
fn floats_follow_go() {
    for (text, value) in [
        ("1", 1.0),
        ("-2.5e-3", -0.0025),
        ("+Inf", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
    ] {
        assert_eq!(parse_float(text), Some(value), "{text}");
    }
    assert!(parse_float("NaN").is_some_and(f64::is_nan));
    for bad in ["", "0x1p3", "1_000", "one", "--1", "1e", " 1"] {
        assert_eq!(parse_float(bad), None, "{bad}");
    }
}

#[test]
fn openmetrics_samples_with_escaped_colons_join_the_family_they_follow() {
    // Exactly what prometheus_client 0.26 serves for vLLM's counter under OpenMetrics.
    let body = "# HELP vllm:prompt_tokens Number of prefill tokens processed.\n# TYPE vllm:prompt_tokens counter\n\
        vllm_prompt_tokens_total{engine=\"0\"} 1203.0\n\
        vllm_prompt_tokens_created{engine=\"0\"} 1.7961613970299623e+09\n\
        vllm_prompt_tokens_total{engine=\"1\"} 2230.0\n\
        vllm_prompt_tokens_created{engine=\"1\"} 1.7961613970312548e+09\n# EOF\n";
    let families = parse(body, Format::OpenMetrics).expect("valid");
    assert_eq!(families.len(), 1);
    let suffixes: Vec<Suffix> = families[0].samples.iter().map(|s| s.suffix).collect();
    assert_eq!(
        suffixes,
        [
            Suffix::Total,
            Suffix::Created,
            Suffix::Total,
            Suffix::Created
        ]
    );
    // Only in OpenMetrics, and only for the family just declared.
    let text = "# TYPE a:b gauge\na_b 1\n";
    assert_eq!(parse(text, Format::Prometheus).expect("valid").len(), 2);
}
