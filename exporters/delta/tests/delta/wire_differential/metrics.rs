//! Differential tests of the metrics wire path against the decoded path (prost decode + `Rows::append`), the
//! reference: requests with every point type and every field (exemplars, flags, buckets, quantiles, metadata,
//! attributes of every kind, absent and present optional values), the tests' metrics, seeded random requests,
//! encodings no prost encoder writes (fields out of order, a `data` variant given twice or replaced, unpacked
//! repeated fields, `Buckets` merged), and thousands of seeded mutations of their bytes: equal record batches
//! (v1 and v2), and bytes prost refuses refused, without a panic.

use otlake_core::proto::common::v1::{InstrumentationScope, KeyValue, any_value};
use otlake_core::proto::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};

use super::*;

fn exemplar(i: u64, value: Option<exemplar::Value>, attributes: Vec<KeyValue>) -> Exemplar {
    Exemplar {
        filtered_attributes: attributes,
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        value,
        span_id: if i.is_multiple_of(3) {
            Vec::new()
        } else {
            vec![i as u8; 8]
        },
        trace_id: vec![0xab; 16],
    }
}

/// Exemplars of every kind: double, int, no value, attributes of every kind, an empty and an odd id.
fn exemplars() -> Vec<Exemplar> {
    vec![
        exemplar(1, Some(exemplar::Value::AsDouble(0.25)), attributes()),
        exemplar(2, Some(exemplar::Value::AsInt(-7)), scalar_attributes(3)),
        exemplar(3, None, Vec::new()),
        Exemplar {
            span_id: vec![1],
            ..Exemplar::default()
        },
    ]
}

fn number_point(i: u64, value: Option<number_data_point::Value>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: if i.is_multiple_of(2) {
            attributes()
        } else {
            scalar_attributes(5)
        },
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        exemplars: if i.is_multiple_of(2) {
            exemplars()
        } else {
            Vec::new()
        },
        flags: (i % 2) as u32,
        value,
    }
}

fn histogram_point(i: u64) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: scalar_attributes(i as usize % 4),
        start_time_unix_nano: 5,
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        count: u64::MAX - i,
        sum: i.is_multiple_of(2).then_some(350.5),
        bucket_counts: (0..i).collect(),
        explicit_bounds: (1..i).map(|b| b as f64 * 0.5).collect(),
        exemplars: exemplars(),
        flags: 1,
        min: i.is_multiple_of(3).then_some(f64::NEG_INFINITY),
        max: (i % 3 != 1).then_some(1e300),
    }
}

fn exp_point(i: u64) -> ExponentialHistogramDataPoint {
    ExponentialHistogramDataPoint {
        attributes: attributes(),
        start_time_unix_nano: 0,
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        count: 6,
        sum: (i != 1).then_some(1.5),
        scale: -3 + i as i32,
        zero_count: 1,
        positive: (i != 2).then(|| Buckets {
            offset: -2 - i as i32,
            bucket_counts: vec![2, 3, u64::MAX],
        }),
        negative: (i == 1).then(|| Buckets {
            offset: i32::MIN,
            bucket_counts: Vec::new(),
        }),
        flags: 0,
        exemplars: exemplars().split_off(2),
        min: Some(0.0),
        max: None,
        zero_threshold: f64::NAN,
    }
}

fn summary_point(i: u64) -> SummaryDataPoint {
    SummaryDataPoint {
        attributes: scalar_attributes(2),
        start_time_unix_nano: 7,
        time_unix_nano: 1_700_000_000_000_000_000 + i,
        count: 10,
        sum: -4.2,
        quantile_values: (0..i)
            .map(|q| ValueAtQuantile {
                quantile: q as f64 / 4.0,
                value: q as f64,
            })
            .collect(),
        flags: 1,
    }
}

fn metric(name: &str, data: Option<metric::Data>) -> Metric {
    Metric {
        name: name.to_owned(),
        description: format!("{name}, described"),
        unit: "{token}".to_owned(),
        metadata: if name.len().is_multiple_of(2) {
            scalar_attributes(2)
        } else {
            Vec::new()
        },
        data,
    }
}

/// Every point type and field, unknown enum values, metrics without data or points, several resources
/// and scopes (one absent each).
fn full_metrics() -> ExportMetricsServiceRequest {
    use number_data_point::Value::{AsDouble, AsInt};
    let metrics = vec![
        metric(
            "gauge",
            Some(metric::Data::Gauge(Gauge {
                data_points: vec![
                    number_point(0, Some(AsDouble(0.5))),
                    number_point(1, Some(AsInt(i64::MIN))),
                    number_point(2, None),
                ],
            })),
        ),
        metric(
            "sum",
            Some(metric::Data::Sum(Sum {
                data_points: vec![number_point(3, Some(AsInt(7))), number_point(4, None)],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
        ),
        metric(
            "sum.odd",
            Some(metric::Data::Sum(Sum {
                data_points: vec![number_point(5, Some(AsDouble(f64::NAN)))],
                aggregation_temporality: 9,
                is_monotonic: false,
            })),
        ),
        metric(
            "histogram",
            Some(metric::Data::Histogram(Histogram {
                data_points: (0..4).map(histogram_point).collect(),
                aggregation_temporality: 1,
            })),
        ),
        metric(
            "exponential",
            Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: (0..3).map(exp_point).collect(),
                aggregation_temporality: 2,
            })),
        ),
        metric(
            "summary",
            Some(metric::Data::Summary(Summary {
                data_points: (0..3).map(summary_point).collect(),
            })),
        ),
        metric("no data", None),
        metric(
            "no points",
            Some(metric::Data::Gauge(Gauge {
                data_points: Vec::new(),
            })),
        ),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![
            ResourceMetrics {
                resource: resource(),
                scope_metrics: vec![
                    ScopeMetrics {
                        scope: scope(),
                        metrics: metrics.clone(),
                        schema_url: "s".into(),
                    },
                    ScopeMetrics {
                        scope: None,
                        metrics: metrics[..2].to_vec(),
                        schema_url: String::new(),
                    },
                    ScopeMetrics::default(),
                ],
                schema_url: "r".into(),
            },
            ResourceMetrics {
                resource: None,
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope::default()),
                    metrics: metrics[3..].to_vec(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
            ResourceMetrics::default(),
        ],
    }
}

/// A random request built from the pieces above.
fn random_metrics(rng: &mut Rng) -> ExportMetricsServiceRequest {
    let pool = full_metrics().resource_metrics[0].scope_metrics[0]
        .metrics
        .clone();
    let metrics = (0..1 + rng.below(5))
        .map(|_| {
            let mut m = pool[rng.below(pool.len())].clone();
            let keep = rng.below(4);
            match &mut m.data {
                Some(metric::Data::Gauge(d)) => d.data_points.truncate(keep),
                Some(metric::Data::Sum(d)) => d.data_points.truncate(keep),
                Some(metric::Data::Histogram(d)) => d.data_points.truncate(keep),
                Some(metric::Data::ExponentialHistogram(d)) => d.data_points.truncate(keep),
                Some(metric::Data::Summary(d)) => d.data_points.truncate(keep),
                None => {}
            }
            m
        })
        .collect();
    let mut r = resource();
    if let Some(r) = &mut r {
        r.attributes.truncate(rng.below(4));
        r.attributes.push(kv(
            "service.name",
            any_value::Value::StringValue(format!("svc-{}", rng.below(3))),
        ));
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: if rng.below(4) == 0 { None } else { r },
            scope_metrics: vec![ScopeMetrics {
                scope: if rng.below(4) == 0 { None } else { scope() },
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn metric_seeds() -> Vec<(String, ExportMetricsServiceRequest)> {
    let mut seeds = vec![
        ("full metrics".to_owned(), full_metrics()),
        (
            "sample_metrics".to_owned(),
            otlake_core::test_util::sample_metrics(2),
        ),
        ("all metric types".to_owned(), data::all_metric_types(3)),
        (
            "empty request".to_owned(),
            ExportMetricsServiceRequest::default(),
        ),
    ];
    with_random(
        &mut seeds,
        "random metrics",
        Rng(0x5eed_0005),
        random_metrics,
    );
    seeds
}

#[test]
fn wire_metric_rows_equal_decoded_metric_rows() {
    for version in VERSIONS {
        let mut pair = Pair::of(Signal::Metrics, version);
        for (name, request) in metric_seeds() {
            let added = pair.append(&request.encode_to_vec()).expect("valid");
            assert_eq!(added, ExportRequest::Metrics(request).item_count());
            pair.assert_equal(&format!("{name}, {version:?}"));
        }
        // Several requests in one chunk: per-group encodings must not leak from one request into the next.
        for (name, request) in metric_seeds() {
            pair.append(&request.encode_to_vec()).expect("valid");
            pair.append(&full_metrics().encode_to_vec()).expect("valid");
            pair.assert_equal(&format!("{name} and more in one chunk, {version:?}"));
        }
    }
}

/// A varint field written by hand.
fn varint_field(tag: u32, value: u64) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let mut out = Vec::new();
    encode_key(tag, WireType::Varint, &mut out);
    encode_varint(value, &mut out);
    out
}

/// A fixed64 field written by hand.
fn fixed64_field(tag: u32, value: u64) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key};
    let mut out = Vec::new();
    encode_key(tag, WireType::SixtyFourBit, &mut out);
    out.extend_from_slice(&value.to_le_bytes());
    out
}

/// Bytes that prost reads the same way but no prost encoder writes: a metric's data before its name and
/// the name given twice, temporality after the points, a `data` variant given twice (merged) and one
/// replaced by another variant, unpacked bucket counts and bounds, a point's value given as a double then
/// an int, `Buckets` given twice (merged), a quantile's fields twice, unknown fields and groups.
#[test]
fn unusual_metric_encodings_are_read_as_prost_reads_them() {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let unknown = {
        let mut out = Vec::new();
        encode_key(99, WireType::StartGroup, &mut out);
        encode_key(1, WireType::Varint, &mut out);
        encode_varint(5, &mut out);
        encode_key(99, WireType::EndGroup, &mut out);
        out.extend(field(97, b"junk"));
        out
    };
    let points = |data: &Metric| match &data.data {
        Some(metric::Data::Sum(s)) => s.encode_to_vec(),
        Some(metric::Data::Gauge(g)) => g.encode_to_vec(),
        _ => unreachable!(),
    };
    let gauge = metric(
        "g",
        Some(metric::Data::Gauge(Gauge {
            data_points: vec![number_point(
                0,
                Some(number_data_point::Value::AsDouble(1.0)),
            )],
        })),
    );
    let sum = metric(
        "s",
        Some(metric::Data::Sum(Sum {
            data_points: vec![number_point(1, Some(number_data_point::Value::AsInt(2)))],
            aggregation_temporality: 0,
            is_monotonic: false,
        })),
    );
    let mut metrics = Vec::new();

    // A sum: data first, then the name twice, a second sum (merged: its point appended, its temporality
    // and monotonicity, after its point, win), unknown fields.
    let mut m = field(7, &points(&sum));
    m.extend(field(1, b"first"));
    m.extend(&unknown);
    m.extend(field(1, b"sum.renamed"));
    let mut second = points(&sum);
    second.extend(varint_field(2, 1));
    second.extend(varint_field(3, 1));
    second.extend(&unknown);
    m.extend(field(7, &second));
    metrics.extend(field(2, &m));

    // A gauge, then a sum (replaces it), then a gauge again (replaces the sum): only the last gauge's points.
    let mut m = field(1, b"replaced");
    m.extend(field(5, &points(&gauge)));
    m.extend(field(7, &points(&sum)));
    let mut last = points(&gauge);
    last.extend(varint_field(2, 2)); // not a Gauge field: skipped
    m.extend(field(5, &last));
    metrics.extend(field(2, &m));

    // A histogram point with unpacked bucket counts and bounds, sum given twice, unknown fields; a number
    // point whose value is a double then an int; an exponential point with `positive` given twice.
    let mut h = histogram_point(3).encode_to_vec();
    h.extend(fixed64_field(6, 42));
    h.extend(fixed64_field(7, 2.5f64.to_bits()));
    h.extend(fixed64_field(5, 9.0f64.to_bits()));
    h.extend(&unknown);
    let mut histogram = field(1, &h);
    histogram.extend(varint_field(2, 2));
    let mut m = field(9, &histogram);
    m.extend(field(1, b"histogram.unpacked"));
    metrics.extend(field(2, &m));

    let mut p = number_point(2, Some(number_data_point::Value::AsDouble(1.5))).encode_to_vec();
    p.extend(fixed64_field(6, (-3i64) as u64));
    p.extend(varint_field(8, u64::from(u32::MAX) + 5));
    metrics.extend(field(
        2,
        &[field(1, b"int wins"), field(5, &field(1, &p))].concat(),
    ));

    let mut e = exp_point(0).encode_to_vec();
    let more = Buckets {
        offset: 5,
        bucket_counts: vec![7],
    }
    .encode_to_vec();
    e.extend(field(8, &more));
    // Unpacked varint counts, and an offset then no offset (the first one stays).
    e.extend(field(
        9,
        &[varint_field(1, 3), varint_field(2, 1), varint_field(2, 2)].concat(),
    ));
    e.extend(field(9, &varint_field(2, 4)));
    e.extend(&unknown);
    let exp = [field(1, &e), varint_field(2, 1)].concat();
    metrics.extend(field(2, &[field(10, &exp), field(1, b"exp")].concat()));

    let mut q = summary_point(2).encode_to_vec();
    q.extend(field(
        6,
        &[
            fixed64_field(1, 0.9f64.to_bits()),
            fixed64_field(1, 0.95f64.to_bits()),
        ]
        .concat(),
    ));
    q.extend(field(6, &[]));
    metrics.extend(field(
        2,
        &[
            field(11, &field(1, &q)),
            field(12, &kv("m", any_value::Value::IntValue(1)).encode_to_vec()),
        ]
        .concat(),
    ));

    let mut scope_metrics = metrics;
    scope_metrics.extend(field(3, b"scope-schema-after"));
    scope_metrics.extend(field(1, &scope().expect("scope").encode_to_vec()));
    let mut resource_metrics = field(2, &scope_metrics);
    resource_metrics.extend(field(1, &resource().expect("resource").encode_to_vec()));
    let request = [unknown.clone(), field(1, &resource_metrics)].concat();

    for version in VERSIONS {
        let mut pair = Pair::of(Signal::Metrics, version);
        // 2 sum points, 1 gauge point, 1 histogram, 1 number, 1 exponential, 1 summary.
        assert_eq!(pair.append(&request), Ok(7));
        let batch = pair.assert_equal(&format!("unusual metric encodings, {version:?}"));
        let name = batch.column_by_name("name").expect("name");
        assert_eq!(name.as_string::<i32>().value(0), "sum.renamed");
    }
}

#[test]
fn mutated_metric_bytes_are_refused_as_prost_refuses_them_or_read_as_prost_reads_them() {
    mutations_read_as_prost_reads_them(Signal::Metrics, metric_seeds(), Rng(0x5eed_0006), 2000);
}

#[test]
fn truncated_metric_requests_are_errors_not_panics() {
    let bytes = full_metrics().encode_to_vec();
    let mut refused = 0;
    for cut in (0..bytes.len()).step_by(5) {
        let mut rows = Rows::new(
            Signal::Metrics,
            SchemaVersion::V2,
            SeverityNumberFormat::Number,
        );
        let wire = rows.append_wire(Signal::Metrics, &bytes[..cut]);
        let prost = ExportMetricsServiceRequest::decode(&bytes[..cut]);
        assert_eq!(wire.is_ok(), prost.is_ok(), "cut at {cut}");
        refused += usize::from(wire.is_err());
    }
    assert!(refused > 0);
}

/// prost decodes a metric's every `data` field, also one that a later variant replaces: bytes it refuses
/// there are refused, though no row comes from them.
#[test]
fn bytes_prost_refuses_in_replaced_metric_data_are_refused() {
    let sum = Sum {
        data_points: vec![number_point(1, Some(number_data_point::Value::AsInt(2)))],
        aggregation_temporality: 1,
        is_monotonic: true,
    }
    .encode_to_vec();
    let broken_gauge = field(5, &[0x00]); // a field number 0 inside the Gauge
    for metric in [
        [broken_gauge.clone(), field(7, &sum)].concat(),
        [broken_gauge.clone(), field(7, &sum), field(5, &[])].concat(),
        [field(7, &sum), broken_gauge, field(7, &sum)].concat(),
    ] {
        let request = field(1, &field(2, &field(2, &metric)));
        for version in VERSIONS {
            let mut pair = Pair::of(Signal::Metrics, version);
            assert!(pair.append(&request).is_err(), "{metric:02x?}");
        }
    }
}
