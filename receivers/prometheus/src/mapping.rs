//! Parsed metric families of one scrape → OTLP metrics, the way the OpenTelemetry Collector's receiver and the
//! OpenTelemetry Prometheus compatibility specification map them:
//! - counter → monotonic cumulative `Sum`, named as its sample (`vllm:prompt_tokens_total`, in both formats);
//! - gauge, untyped/unknown → `Gauge`; OpenMetrics gaugehistogram → a `Gauge` per sample (`_bucket` with `le`,
//!   `_gcount`, `_gsum`), since OTLP has no gauge histogram;
//! - histogram → explicit-bucket cumulative `Histogram`: the cumulative `_bucket` counts become per-bucket
//!   counts, the `+Inf` bucket the overflow bucket, with `_sum` and `_count` (and exemplars);
//! - summary → `Summary` with its quantiles, `_sum` and `_count`;
//! - info and stateset → non-monotonic cumulative `Sum`.
//!
//! Labels: the target's (`job`, `instance`, `static_configs[].labels`) are attached first, a clash resolved by
//! `honor_labels`; then `metric_relabel_configs` run; then `job` and `instance` become the resource
//! (`service.name`, `service.instance.id`, `server.address`, `server.port`, `url.scheme`) and every other label
//! a data point attribute (`le` and `quantile` excepted). A `target_info` series is not a metric: its labels
//! become resource attributes.
//!
//! Start times ([`SeriesStarts`], kept per target across scrapes): a sample family's `_created` where given;
//! else the time the series was first seen (that point's own time); a counter (or a histogram's or summary's
//! count) that goes down is a restart, whose new start is the previous observation's time. A series absent
//! from a scrape is forgotten, and starts afresh if it comes back.
//!
//! A family whose samples contradict it (a histogram whose cumulative buckets go down, a series twice) fails the
//! scrape like a parse error: nothing of such a scrape is kept.

use std::collections::{HashMap, HashSet};

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::proto::metrics::v1::{
    AggregationTemporality, Exemplar, Gauge, Histogram, HistogramDataPoint, NumberDataPoint,
    ResourceMetrics, Sum, Summary, SummaryDataPoint, exemplar, metric, number_data_point,
    summary_data_point::ValueAtQuantile,
};

use crate::parse::{self, Family, MetricType, Sample, Suffix};
use crate::relabel::Relabeler;

mod created;
mod resource;
mod starts;
mod synthetic;

use created::CreatedSeries;
use resource::Output;
pub use resource::{resource_attributes, scope};
pub use starts::SeriesStarts;
pub use synthetic::{ScrapeReport, request, synthetic_metrics};

/// The instrumentation scope of every scraped metric.
pub const SCOPE_NAME: &str = "otlake/receiver/prometheus";

/// Who a scrape is of, and how its labels are treated.
#[derive(Clone, Debug)]
pub struct TargetInfo {
    /// `job_name` (or a `job` label from `static_configs`).
    pub job: String,
    /// The target as written (`host:port`), or an `instance` label from `static_configs`.
    pub instance: String,
    /// `http` or `https`.
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// `static_configs[].labels` other than `job` and `instance`, sorted by name.
    pub labels: Vec<(String, String)>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// 0: no limit.
    pub sample_limit: u64,
}

/// Why a scrape's content was refused after it parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("line {line}: {message}")]
    Invalid { line: usize, message: String },
    #[error("{samples} samples after metric relabeling, over sample_limit {limit}")]
    SampleLimit { samples: u64, limit: u64 },
}

/// The counts Prometheus reports about a scrape (`scrape_samples_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SampleCounts {
    /// Samples in the exposition.
    pub scraped: u64,
    /// Samples kept by `metric_relabel_configs`.
    pub post_relabel: u64,
}

/// Labels of one sample after the target's were attached and the relabel rules ran; `job` and `instance`
/// apart.
struct SeriesLabels {
    job: String,
    instance: String,
    /// From `otel_scope_name` / `otel_scope_version`, when the target writes them.
    scope: Option<resource::ScopeKey>,
    /// Sorted by name; without `job`, `instance`, `__name__`.
    attributes: Vec<(String, String)>,
}

/// Maps one parsed exposition. `scrape_ns` stamps samples without (honored) timestamps.
pub fn map_scrape(
    families: &[Family<'_>],
    target: &TargetInfo,
    relabel: &Relabeler,
    starts: &mut SeriesStarts,
    scrape_ns: u64,
) -> Result<(Vec<ResourceMetrics>, SampleCounts), MapError> {
    let mut out = Output::default();
    let mut counts = SampleCounts::default();
    let created = CreatedSeries::collect(families);
    let mut seen = HashSet::new();
    for family in families {
        if created.is_created_family(family) {
            counts.scraped += family.samples.len() as u64;
            continue;
        }
        counts.scraped += family.samples.len() as u64;
        let mut kept = Vec::with_capacity(family.samples.len());
        for sample in &family.samples {
            if let Some(labels) = series_labels(family, sample, target, relabel) {
                kept.push((sample, labels));
            }
        }
        counts.post_relabel += kept.len() as u64;
        if family.name == "target_info"
            || (family.kind == MetricType::Info && family.name == "target")
        {
            for (_, labels) in &kept {
                out.resource(&labels.job, &labels.instance)
                    .extra_attributes
                    .extend(labels.attributes.iter().cloned());
            }
            continue;
        }
        let time = |sample: &Sample<'_>| -> u64 {
            match sample.timestamp_ns {
                Some(ns) if target.honor_timestamps => u64::try_from(ns).unwrap_or(0),
                _ => scrape_ns,
            }
        };
        match family.kind {
            MetricType::Counter => {
                map_counter(family, kept, &created, starts, &mut out, &mut seen, time)?
            }
            MetricType::Histogram => map_histogram(family, kept, &created, starts, &mut out, time)?,
            MetricType::Summary => map_summary(family, kept, &created, starts, &mut out, time)?,
            MetricType::Gauge
            | MetricType::Unknown
            | MetricType::StateSet
            | MetricType::GaugeHistogram
            | MetricType::Info => {
                for (sample, labels) in kept {
                    // A gauge histogram's `le` stays an attribute: each bucket is its own gauge series.
                    let key = series_key(
                        &point_name(family, sample),
                        &labels.attributes,
                        &labels,
                        &[],
                    );
                    if !seen.insert(key) {
                        return Err(duplicate(sample));
                    }
                    let point = NumberDataPoint {
                        attributes: key_values(&labels.attributes),
                        time_unix_nano: time(sample),
                        value: Some(number_data_point::Value::AsDouble(sample.value)),
                        ..Default::default()
                    };
                    let name = point_name(family, sample);
                    let cumulative_sum =
                        matches!(family.kind, MetricType::Info | MetricType::StateSet);
                    let metric = out.metric(&labels, &name, family, || {
                        if cumulative_sum {
                            metric::Data::Sum(Sum {
                                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                                is_monotonic: false,
                                data_points: Vec::new(),
                            })
                        } else {
                            metric::Data::Gauge(Gauge {
                                data_points: Vec::new(),
                            })
                        }
                    });
                    match &mut metric.data {
                        Some(metric::Data::Sum(sum)) => sum.data_points.push(point),
                        Some(metric::Data::Gauge(gauge)) => gauge.data_points.push(point),
                        _ => {}
                    }
                }
            }
        }
    }
    if target.sample_limit > 0 && counts.post_relabel > target.sample_limit {
        return Err(MapError::SampleLimit {
            samples: counts.post_relabel,
            limit: target.sample_limit,
        });
    }
    starts.finish_scrape();
    Ok((out.finish(target), counts))
}

/// The OTLP name of a sample's metric: the family name, plus the suffix where the suffix is part of what
/// Prometheus users query (`_total` of an OpenMetrics counter, `_info`, a gauge histogram's `_gcount`). A text
/// format counter is named as written (`vllm:prompt_tokens_total`), so both formats give the same name.
fn point_name(family: &Family<'_>, sample: &Sample<'_>) -> String {
    match family.kind {
        MetricType::Counter | MetricType::Info | MetricType::GaugeHistogram => {
            format!("{}{}", family.name, sample.suffix.text())
        }
        _ => family.name.to_owned(),
    }
}

fn duplicate(sample: &Sample<'_>) -> MapError {
    MapError::Invalid {
        line: sample.line,
        message: format!("`{}` repeats a series of the same labels", sample.name),
    }
}

/// The labels of `sample` as Prometheus stores them, or `None` if a relabel rule dropped it.
/// The relabel rules see `__name__` as the family spells the sample (`vllm:prompt_tokens_total`, whatever
/// escaping the exposition used).
fn series_labels(
    family: &Family<'_>,
    sample: &Sample<'_>,
    target: &TargetInfo,
    relabel: &Relabeler,
) -> Option<SeriesLabels> {
    // Empty values are absent labels in Prometheus.
    let mut labels: Vec<(String, String)> = sample
        .labels
        .iter()
        .filter(|l| !l.value.is_empty())
        .map(|l| (l.name.to_owned(), l.value.clone().into_owned()))
        .collect();
    let target_labels = [
        ("job", target.job.as_str()),
        ("instance", target.instance.as_str()),
    ]
    .into_iter()
    .chain(target.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    for (label, value) in target_labels {
        match labels.iter().position(|(n, _)| n == label) {
            Some(_) if target.honor_labels => {}
            Some(index) => {
                // Prometheus keeps the scraped value as `exported_<name>` (prefixing again while that is taken).
                let mut exported = format!("exported_{label}");
                while labels.iter().any(|(n, _)| *n == exported) {
                    exported.insert_str(0, "exported_");
                }
                labels[index].0 = exported;
                labels.push((label.to_owned(), value.to_owned()));
            }
            None => labels.push((label.to_owned(), value.to_owned())),
        }
    }
    if !relabel.is_empty() {
        labels.push((
            "__name__".to_owned(),
            format!("{}{}", family.name, sample.suffix.text()),
        ));
        if !relabel.apply(&mut labels) {
            return None;
        }
        labels.retain(|(n, _)| n != "__name__");
    }
    let mut job = String::new();
    let mut instance = String::new();
    let mut scope_name = None;
    let mut scope_version = String::new();
    labels.retain_mut(|(name, value)| match name.as_str() {
        "job" => {
            job = std::mem::take(value);
            false
        }
        "instance" => {
            instance = std::mem::take(value);
            false
        }
        "otel_scope_name" => {
            scope_name = Some(std::mem::take(value));
            false
        }
        "otel_scope_version" => {
            scope_version = std::mem::take(value);
            false
        }
        _ => true,
    });
    let scope = scope_name.map(|name| (name, scope_version));
    labels.sort();
    Some(SeriesLabels {
        job,
        instance,
        scope,
        attributes: labels,
    })
}

/// The identity of a series for start times and duplicate checks: resource, scope, metric name, attributes,
/// and the bucket or quantile it is (if any).
fn series_key(
    name: &str,
    attributes: &[(String, String)],
    labels: &SeriesLabels,
    extra: &[&str],
) -> String {
    let mut key = String::with_capacity(64);
    let (scope_name, scope_version) = labels
        .scope
        .as_ref()
        .map_or(("", ""), |(n, v)| (n.as_str(), v.as_str()));
    for part in [
        labels.job.as_str(),
        labels.instance.as_str(),
        scope_name,
        scope_version,
        name,
    ] {
        key.push_str(part);
        key.push('\u{0}');
    }
    for (n, v) in attributes {
        key.push_str(n);
        key.push('\u{1}');
        key.push_str(v);
        key.push('\u{0}');
    }
    for part in extra {
        key.push_str(part);
        key.push('\u{0}');
    }
    key
}

fn key_values(attributes: &[(String, String)]) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.clone())),
            }),
            ..Default::default()
        })
        .collect()
}

fn map_counter<'a>(
    family: &Family<'a>,
    kept: Vec<(&Sample<'a>, SeriesLabels)>,
    created: &CreatedSeries<'_>,
    starts: &mut SeriesStarts,
    out: &mut Output,
    seen: &mut HashSet<String>,
    time: impl Fn(&Sample<'_>) -> u64,
) -> Result<(), MapError> {
    for (sample, labels) in kept {
        if sample.suffix == Suffix::Created {
            continue;
        }
        let name = point_name(family, sample);
        let key = series_key(&name, &labels.attributes, &labels, &[]);
        if !seen.insert(key.clone()) {
            return Err(duplicate(sample));
        }
        let time_ns = time(sample);
        let start_ns = starts.start(
            &key,
            sample.value,
            time_ns,
            created.get(family.name, sample),
        );
        let point = NumberDataPoint {
            attributes: key_values(&labels.attributes),
            start_time_unix_nano: start_ns,
            time_unix_nano: time_ns,
            value: Some(number_data_point::Value::AsDouble(sample.value)),
            exemplars: sample
                .exemplar
                .iter()
                .map(|e| exemplar(e, time_ns))
                .collect(),
            ..Default::default()
        };
        let metric = out.metric(&labels, &name, family, || {
            metric::Data::Sum(Sum {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
                data_points: Vec::new(),
            })
        });
        if let Some(metric::Data::Sum(sum)) = &mut metric.data {
            sum.data_points.push(point);
        }
    }
    Ok(())
}

/// The samples of one histogram or summary series, gathered.
#[derive(Default)]
struct Gathered<'s, 'a> {
    /// `(le or quantile, value, sample)`.
    parts: Vec<(f64, f64, &'s Sample<'a>)>,
    count: Option<f64>,
    sum: Option<f64>,
    time_ns: Option<u64>,
    first: Option<&'s Sample<'a>>,
    labels: Option<SeriesLabels>,
}

/// Groups a histogram's or summary's samples by series (labels without `le` / `quantile`), in first-seen order.
fn gather<'s, 'a>(
    family_name: &str,
    kept: Vec<(&'s Sample<'a>, SeriesLabels)>,
    bound_label: &str,
    time: impl Fn(&Sample<'_>) -> u64,
) -> Result<Vec<(String, Gathered<'s, 'a>)>, MapError> {
    let mut order: Vec<(String, Gathered<'s, 'a>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (sample, mut labels) in kept {
        if sample.suffix == Suffix::Created {
            continue;
        }
        labels.attributes.retain(|(n, _)| n != bound_label);
        let key = series_key(family_name, &labels.attributes, &labels, &[]);
        let position = *index.entry(key.clone()).or_insert_with(|| {
            order.push((key.clone(), Gathered::default()));
            order.len() - 1
        });
        let series = &mut order[position].1;
        series.time_ns = Some(series.time_ns.unwrap_or(0).max(time(sample)));
        series.first.get_or_insert(sample);
        // A second `_count` or `_sum` is a repeated series; a repeated bucket or quantile is found once the
        // parts are sorted (`le="1"` and `le="1.0"` are the same bucket).
        let repeated = match sample.suffix {
            Suffix::Count => series.count.replace(sample.value).is_some(),
            Suffix::Sum => series.sum.replace(sample.value).is_some(),
            _ => {
                let bound = sample.label(bound_label).unwrap_or("");
                let bound_value = parse::parse_float(bound).unwrap_or(f64::NAN);
                series.parts.push((bound_value, sample.value, sample));
                false
            }
        };
        if repeated {
            return Err(duplicate(sample));
        }
        if series.labels.is_none() {
            series.labels = Some(labels);
        }
    }
    Ok(order)
}

fn map_histogram<'a>(
    family: &Family<'a>,
    kept: Vec<(&Sample<'a>, SeriesLabels)>,
    created: &CreatedSeries<'_>,
    starts: &mut SeriesStarts,
    out: &mut Output,
    time: impl Fn(&Sample<'_>) -> u64,
) -> Result<(), MapError> {
    for (key, mut series) in gather(family.name, kept, "le", &time)? {
        let (Some(labels), Some(first)) = (series.labels.take(), series.first) else {
            continue;
        };
        let invalid = |sample: &Sample<'_>, message: String| MapError::Invalid {
            line: sample.line,
            message,
        };
        series.parts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut bounds = Vec::with_capacity(series.parts.len());
        let mut bucket_counts = Vec::with_capacity(series.parts.len() + 1);
        let mut previous = 0.0f64;
        let mut infinite = None;
        let mut last_bound = None;
        for (bound, cumulative, sample) in &series.parts {
            if bound.is_nan() {
                return Err(invalid(
                    sample,
                    format!("`{}` has an `le` that is not a number", sample.name),
                ));
            }
            if last_bound == Some(*bound) {
                // `le="1"` and `le="1.0"` are one bucket written twice.
                return Err(duplicate(sample));
            }
            last_bound = Some(*bound);
            if !(cumulative.is_finite() && *cumulative >= previous) {
                return Err(invalid(
                    sample,
                    format!(
                        "`{}` bucket le=\"{bound}\" holds {cumulative}, fewer than the bucket below it ({previous}): cumulative counts must not go down",
                        sample.name
                    ),
                ));
            }
            if *bound == f64::INFINITY {
                // The overflow bucket: counted below, from the total.
                infinite = Some(*cumulative);
            } else {
                bounds.push(*bound);
                bucket_counts.push((cumulative - previous).round() as u64);
                previous = *cumulative;
            }
        }
        let count = infinite.or(series.count).unwrap_or(previous);
        if count < previous || !count.is_finite() {
            return Err(invalid(
                first,
                format!(
                    "`{}_count` is {count}, fewer than its buckets hold ({previous})",
                    family.name
                ),
            ));
        }
        if !series.parts.is_empty() {
            bucket_counts.push((count - previous).round() as u64);
        }
        let time_ns = series.time_ns.unwrap_or(0);
        let start_ns = starts.start(&key, count, time_ns, created.get(family.name, first));
        let exemplars = series
            .parts
            .iter()
            .filter_map(|(_, _, sample)| sample.exemplar.as_ref().map(|e| exemplar(e, time_ns)))
            .collect();
        let point = HistogramDataPoint {
            attributes: key_values(&labels.attributes),
            start_time_unix_nano: start_ns,
            time_unix_nano: time_ns,
            count: count.round() as u64,
            sum: series.sum.filter(|s| s.is_finite()),
            bucket_counts,
            explicit_bounds: bounds,
            exemplars,
            ..Default::default()
        };
        let metric = out.metric(&labels, family.name, family, || {
            metric::Data::Histogram(Histogram {
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                data_points: Vec::new(),
            })
        });
        if let Some(metric::Data::Histogram(histogram)) = &mut metric.data {
            histogram.data_points.push(point);
        }
    }
    Ok(())
}

fn map_summary<'a>(
    family: &Family<'a>,
    kept: Vec<(&Sample<'a>, SeriesLabels)>,
    created: &CreatedSeries<'_>,
    starts: &mut SeriesStarts,
    out: &mut Output,
    time: impl Fn(&Sample<'_>) -> u64,
) -> Result<(), MapError> {
    for (key, mut series) in gather(family.name, kept, "quantile", &time)? {
        let (Some(labels), Some(first)) = (series.labels.take(), series.first) else {
            continue;
        };
        series.parts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(pair) = series.parts.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(duplicate(pair[1].2));
        }
        let count = series.count.unwrap_or(0.0);
        let time_ns = series.time_ns.unwrap_or(0);
        let start_ns = starts.start(&key, count, time_ns, created.get(family.name, first));
        let point = SummaryDataPoint {
            attributes: key_values(&labels.attributes),
            start_time_unix_nano: start_ns,
            time_unix_nano: time_ns,
            count: if count.is_finite() && count >= 0.0 {
                count.round() as u64
            } else {
                0
            },
            sum: series.sum.unwrap_or(0.0),
            quantile_values: series
                .parts
                .iter()
                .map(|(quantile, value, _)| ValueAtQuantile {
                    quantile: *quantile,
                    value: *value,
                })
                .collect(),
            ..Default::default()
        };
        let metric = out.metric(&labels, family.name, family, || {
            metric::Data::Summary(Summary {
                data_points: Vec::new(),
            })
        });
        if let Some(metric::Data::Summary(summary)) = &mut metric.data {
            summary.data_points.push(point);
        }
    }
    Ok(())
}

/// An OpenMetrics exemplar as OTLP's: `trace_id` and `span_id` labels (hex) become the ids, the rest attributes.
fn exemplar(e: &parse::Exemplar<'_>, point_ns: u64) -> Exemplar {
    let mut out = Exemplar {
        time_unix_nano: e
            .timestamp_ns
            .and_then(|ns| u64::try_from(ns).ok())
            .unwrap_or(point_ns),
        value: Some(exemplar::Value::AsDouble(e.value)),
        ..Default::default()
    };
    for label in &e.labels {
        match (label.name, hex_bytes(&label.value)) {
            ("trace_id", Some(id)) if id.len() == 16 => out.trace_id = id,
            ("span_id", Some(id)) if id.len() == 8 => out.span_id = id,
            _ => out.filtered_attributes.push(KeyValue {
                key: label.name.to_owned(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(
                        label.value.clone().into_owned(),
                    )),
                }),
                ..Default::default()
            }),
        }
    }
    out
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests;
