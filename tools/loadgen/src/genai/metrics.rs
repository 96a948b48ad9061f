//! Metrics: the GenAI client histograms (token usage, operation duration, time to first token) and a GPU
//! utilisation gauge, in rounds of a few data points per metric until the request holds exactly `items`.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use prost::Message;

use super::vocab::{MODELS, MS, pick, resource, s, scope};
use crate::template::{Template, TemplateBuilder, TemplateError};

const TOKEN_BOUNDS: &[f64] = &[
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
];
const SECONDS_BOUNDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// A metrics request of exactly `items` data points: GenAI client histograms and GPU gauges.
pub fn metrics(mut b: TemplateBuilder, items: usize) -> Result<Template, TemplateError> {
    let res = resource(b.rng());
    let mut metrics: Vec<Metric> = Vec::new();
    let mut left = items;
    let mut round = 0usize;
    while left > 0 {
        let which = round % 4;
        round += 1;
        let n = left.min(b.rng().usize(2..12));
        left -= n;
        let mut histogram_points = Vec::new();
        let mut gauge_points = Vec::new();
        for _ in 0..n {
            let (provider, model) = *pick(b.rng(), MODELS);
            let start = b.time_ago(10_000 * MS);
            let time = b.time_ago(0);
            let rng = b.rng();
            let mut attributes = vec![
                s("gen_ai.operation.name", "chat"),
                s("gen_ai.provider.name", provider),
                s("gen_ai.request.model", model),
            ];
            match which {
                0..=2 => {
                    let bounds = if which == 0 {
                        TOKEN_BOUNDS
                    } else {
                        SECONDS_BOUNDS
                    };
                    if which == 0 {
                        attributes.push(s(
                            "gen_ai.token.type",
                            if rng.bool() { "input" } else { "output" },
                        ));
                    }
                    let bucket_counts: Vec<u64> =
                        (0..=bounds.len()).map(|_| rng.u64(0..50)).collect();
                    let count = bucket_counts.iter().sum();
                    histogram_points.push(HistogramDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: time,
                        count,
                        sum: Some(rng.f64() * count as f64 * 100.0),
                        bucket_counts,
                        explicit_bounds: bounds.to_vec(),
                        min: Some(0.5),
                        max: Some(bounds[bounds.len() - 1]),
                        ..Default::default()
                    });
                }
                _ => {
                    attributes.push(s("gpu.id", format!("GPU-{}", rng.u8(0..8))));
                    gauge_points.push(NumberDataPoint {
                        attributes,
                        start_time_unix_nano: start,
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsDouble(rng.f64())),
                        ..Default::default()
                    });
                }
            }
        }
        let delta = AggregationTemporality::Delta as i32;
        let (name, unit, data) = match which {
            0 => (
                "gen_ai.client.token.usage",
                "{token}",
                metric::Data::Histogram(Histogram {
                    data_points: histogram_points,
                    aggregation_temporality: delta,
                }),
            ),
            1 => (
                "gen_ai.client.operation.duration",
                "s",
                metric::Data::Histogram(Histogram {
                    data_points: histogram_points,
                    aggregation_temporality: delta,
                }),
            ),
            2 => (
                "gen_ai.server.time_to_first_token",
                "s",
                metric::Data::Histogram(Histogram {
                    data_points: histogram_points,
                    aggregation_temporality: delta,
                }),
            ),
            _ => (
                "hw.gpu.utilization",
                "1",
                metric::Data::Gauge(Gauge {
                    data_points: gauge_points,
                }),
            ),
        };
        metrics.push(Metric {
            name: name.to_owned(),
            unit: unit.to_owned(),
            data: Some(data),
            ..Default::default()
        });
    }
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(res),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope("opentelemetry.instrumentation.openai_v2")),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    b.finish(request.encode_to_vec(), items as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdSource;

    #[test]
    fn a_metrics_request_holds_exactly_the_batch_of_data_points() {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        for items in [1usize, 50, 100] {
            let template = metrics(TemplateBuilder::new(9), items).expect("template");
            let mut own = Vec::new();
            let block = IdSource::new(1).reserve(template.id_count());
            let bytes = template.render(&block, 1_800_000_000_000_000_000, &mut own);
            let req = ExportMetricsServiceRequest::decode(bytes).expect("decodes");
            let points: usize = req.resource_metrics[0].scope_metrics[0]
                .metrics
                .iter()
                .map(|m| match &m.data {
                    Some(Data::Histogram(h)) => {
                        for p in &h.data_points {
                            assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                            assert_eq!(p.time_unix_nano, 1_800_000_000_000_000_000);
                        }
                        h.data_points.len()
                    }
                    Some(Data::Gauge(g)) => g.data_points.len(),
                    other => panic!("{other:?}"),
                })
                .sum();
            assert_eq!(points, items);
            assert!(own.is_empty(), "metrics have no ids to log");
        }
    }
}
