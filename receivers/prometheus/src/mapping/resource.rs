//! The resources of a scrape (one per `job` / `instance`, normally just the target's) and the metrics being
//! built under each, by name.

use std::collections::HashMap;

use otlake_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlake_core::proto::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics, metric};
use otlake_core::proto::resource::v1::Resource;

use super::{SCOPE_NAME, SeriesLabels, TargetInfo, key_values};
use crate::parse::Family;

/// The resource of `job` / `instance`: the attributes the compatibility specification gives a target.
pub fn resource_attributes(target: &TargetInfo, job: &str, instance: &str) -> Vec<KeyValue> {
    let (host, port) = if instance == target.instance {
        (target.host.clone(), Some(target.port))
    } else {
        // A target-set or honored `instance` label: its own host and port, where it has them.
        match instance.rsplit_once(':') {
            Some((host, port)) => (host.trim_matches(['[', ']']).to_owned(), port.parse().ok()),
            None => (instance.to_owned(), None),
        }
    };
    let string = |key: &str, value: String| KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    };
    let mut attributes = vec![
        string("service.name", job.to_owned()),
        string("service.instance.id", instance.to_owned()),
        string("server.address", host),
    ];
    if let Some(port) = port {
        attributes.push(KeyValue {
            key: "server.port".to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(i64::from(port))),
            }),
            ..Default::default()
        });
    }
    attributes.push(string("url.scheme", target.scheme.clone()));
    attributes
}

/// The metrics being built, by resource and name.
#[derive(Default)]
pub(super) struct Output {
    resources: Vec<ResourceOut>,
    by_resource: HashMap<(String, String), usize>,
}

pub(super) struct ResourceOut {
    job: String,
    instance: String,
    pub(super) extra_attributes: Vec<(String, String)>,
    metrics: Vec<Metric>,
    by_name: HashMap<String, usize>,
}

impl Output {
    pub(super) fn resource(&mut self, job: &str, instance: &str) -> &mut ResourceOut {
        let key = (job.to_owned(), instance.to_owned());
        let index = match self.by_resource.get(&key) {
            Some(&index) => index,
            None => {
                self.resources.push(ResourceOut {
                    job: job.to_owned(),
                    instance: instance.to_owned(),
                    extra_attributes: Vec::new(),
                    metrics: Vec::new(),
                    by_name: HashMap::new(),
                });
                self.by_resource.insert(key, self.resources.len() - 1);
                self.resources.len() - 1
            }
        };
        &mut self.resources[index]
    }

    pub(super) fn metric(
        &mut self,
        labels: &SeriesLabels,
        name: &str,
        family: &Family<'_>,
        data: impl FnOnce() -> metric::Data,
    ) -> &mut Metric {
        let resource = self.resource(&labels.job, &labels.instance);
        let index = match resource.by_name.get(name) {
            Some(&index) => index,
            None => {
                resource.metrics.push(Metric {
                    name: name.to_owned(),
                    description: family.help.as_deref().unwrap_or("").to_owned(),
                    unit: family.unit.unwrap_or("").to_owned(),
                    data: Some(data()),
                    ..Default::default()
                });
                resource
                    .by_name
                    .insert(name.to_owned(), resource.metrics.len() - 1);
                resource.metrics.len() - 1
            }
        };
        &mut resource.metrics[index]
    }

    pub(super) fn finish(mut self, target: &TargetInfo) -> Vec<ResourceMetrics> {
        // The target's own resource always exists: the synthetic series go there.
        self.resource(&target.job, &target.instance);
        self.resources
            .into_iter()
            .map(|r| {
                let mut attributes = resource_attributes(target, &r.job, &r.instance);
                attributes.extend(key_values(&r.extra_attributes));
                ResourceMetrics {
                    resource: Some(Resource {
                        attributes,
                        ..Default::default()
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(scope()),
                        metrics: r.metrics,
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect()
    }
}

/// The instrumentation scope of scraped metrics.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}
