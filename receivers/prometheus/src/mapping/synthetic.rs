//! The series Prometheus records about each scrape (`up`, `scrape_duration_seconds`, ...) and the one export
//! request a scrape becomes.

use otlake_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlake_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use otlake_core::proto::resource::v1::Resource;

use super::{SCOPE_NAME, SampleCounts, TargetInfo, key_values, resource_attributes, scope};

/// What Prometheus records about every scrape of a target, as gauges with the target's labels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScrapeReport {
    pub up: bool,
    pub duration_seconds: f64,
    pub counts: SampleCounts,
}

/// The synthetic `up`, `scrape_duration_seconds`, `scrape_samples_scraped` and
/// `scrape_samples_post_metric_relabeling` metrics of one scrape, stamped `scrape_ns`.
pub fn synthetic_metrics(
    target: &TargetInfo,
    report: &ScrapeReport,
    scrape_ns: u64,
) -> Vec<Metric> {
    let gauge = |name: &str, description: &str, unit: &str, value: f64| Metric {
        name: name.to_owned(),
        description: description.to_owned(),
        unit: unit.to_owned(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: key_values(&target.labels),
                time_unix_nano: scrape_ns,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    vec![
        gauge(
            "up",
            "1 if the target was scraped successfully, else 0.",
            "",
            if report.up { 1.0 } else { 0.0 },
        ),
        gauge(
            "scrape_duration_seconds",
            "How long the scrape took.",
            "s",
            report.duration_seconds,
        ),
        gauge(
            "scrape_samples_scraped",
            "Samples the target exposed.",
            "",
            report.counts.scraped as f64,
        ),
        gauge(
            "scrape_samples_post_metric_relabeling",
            "Samples kept after metric_relabel_configs.",
            "",
            report.counts.post_relabel as f64,
        ),
    ]
}

/// Appends the synthetic metrics to the target's own resource (the first one `map_scrape` returns, or a new one
/// for a failed scrape) and wraps everything as one export request.
pub fn request(
    target: &TargetInfo,
    mut resources: Vec<ResourceMetrics>,
    synthetic: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    let own = resource_attributes(target, &target.job, &target.instance);
    let position = resources.iter().position(|r| {
        r.resource
            .as_ref()
            .is_some_and(|res| res.attributes.starts_with(&own))
    });
    match position {
        Some(i) => {
            // The receiver's own scope, which a scrape of only `otel_scope_name`-labelled series lacks.
            let scopes = &mut resources[i].scope_metrics;
            let own_scope = scopes
                .iter()
                .position(|s| s.scope.as_ref().is_some_and(|s| s.name == SCOPE_NAME));
            match own_scope {
                Some(j) => scopes[j].metrics.extend(synthetic),
                None => scopes.push(ScopeMetrics {
                    scope: Some(scope()),
                    metrics: synthetic,
                    ..Default::default()
                }),
            }
        }
        None => resources.push(ResourceMetrics {
            resource: Some(Resource {
                attributes: own,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: synthetic,
                ..Default::default()
            }],
            ..Default::default()
        }),
    }
    ExportMetricsServiceRequest {
        resource_metrics: resources,
    }
}
