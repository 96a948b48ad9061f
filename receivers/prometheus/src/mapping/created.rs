//! `_created`: the start times a target writes, found for each series before the families are mapped.

use std::collections::{HashMap, HashSet};

use crate::parse::{Family, MetricType, Sample, Suffix};

fn seconds_to_ns(seconds: f64) -> Option<u64> {
    (0.0..1.8e10)
        .contains(&seconds)
        .then(|| (seconds * 1e9).round() as u64)
}

/// `_created` values by series: from the families' own `_created` samples, and (text format) from the
/// `<name>_created` gauge families that clients such as Python's `prometheus_client` write beside a counter,
/// histogram or summary.
#[derive(Default)]
pub(super) struct CreatedSeries<'a> {
    /// `(family name, sorted labels without le/quantile)` → seconds.
    values: HashMap<(String, Vec<(String, String)>), f64>,
    /// Names of text-format `_created` families folded into their parent.
    folded: HashSet<&'a str>,
}

impl<'a> CreatedSeries<'a> {
    pub(super) fn collect(families: &'a [Family<'a>]) -> Self {
        let mut created = CreatedSeries::default();
        let parents: HashMap<&str, &str> = families
            .iter()
            .filter_map(|f| match f.kind {
                MetricType::Counter => {
                    Some((f.name.strip_suffix("_total").unwrap_or(f.name), f.name))
                }
                MetricType::Histogram | MetricType::Summary => Some((f.name, f.name)),
                _ => None,
            })
            .collect();
        for family in families {
            for sample in family
                .samples
                .iter()
                .filter(|s| s.suffix == Suffix::Created)
            {
                created
                    .values
                    .insert((family.name.to_owned(), plain_labels(sample)), sample.value);
            }
            if matches!(family.kind, MetricType::Gauge | MetricType::Unknown)
                && let Some(stem) = family.name.strip_suffix("_created")
                && let Some(parent) = parents.get(stem)
            {
                created.folded.insert(family.name);
                for sample in &family.samples {
                    created
                        .values
                        .insert(((*parent).to_owned(), plain_labels(sample)), sample.value);
                }
            }
        }
        created
    }

    pub(super) fn is_created_family(&self, family: &Family<'_>) -> bool {
        self.folded.contains(family.name)
    }

    pub(super) fn get(&self, family: &str, sample: &Sample<'_>) -> Option<u64> {
        if self.values.is_empty() {
            return None;
        }
        let value = self
            .values
            .get(&(family.to_owned(), plain_labels(sample)))?;
        seconds_to_ns(*value)
    }
}

/// A sample's own labels, sorted, without `le` and `quantile` and empty values: how `_created` finds its series.
fn plain_labels(sample: &Sample<'_>) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = sample
        .labels
        .iter()
        .filter(|l| l.name != "le" && l.name != "quantile" && !l.value.is_empty())
        .map(|l| (l.name.to_owned(), l.value.clone().into_owned()))
        .collect();
    labels.sort();
    labels
}
