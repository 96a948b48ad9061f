//! The resources of a scrape (one per `job` / `instance`, normally just the target's), their scopes (the
//! receiver's own, and one per `otel_scope_name` / `otel_scope_version` a target writes, as the Collector
//! does) and the metrics being built under each, by name.

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

/// The metrics being built, by resource, scope and name.
#[derive(Default)]
pub(super) struct Output {
    resources: Vec<ResourceOut>,
    by_resource: HashMap<(String, String), usize>,
}

pub(super) struct ResourceOut {
    job: String,
    instance: String,
    pub(super) extra_attributes: Vec<(String, String)>,
    scopes: Vec<ScopeOut>,
    by_scope: HashMap<Option<ScopeKey>, usize>,
}

/// `otel_scope_name` and `otel_scope_version` of a series; `None`: the receiver's own scope.
pub(super) type ScopeKey = (String, String);

struct ScopeOut {
    key: Option<ScopeKey>,
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
                    scopes: Vec::new(),
                    by_scope: HashMap::new(),
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
        let scope_index = match resource.by_scope.get(&labels.scope) {
            Some(&index) => index,
            None => {
                resource.scopes.push(ScopeOut {
                    key: labels.scope.clone(),
                    metrics: Vec::new(),
                    by_name: HashMap::new(),
                });
                resource
                    .by_scope
                    .insert(labels.scope.clone(), resource.scopes.len() - 1);
                resource.scopes.len() - 1
            }
        };
        let scope = &mut resource.scopes[scope_index];
        let index = match scope.by_name.get(name) {
            Some(&index) => index,
            None => {
                scope.metrics.push(Metric {
                    name: name.to_owned(),
                    description: family.help.as_deref().unwrap_or("").to_owned(),
                    unit: family.unit.unwrap_or("").to_owned(),
                    data: Some(data()),
                    ..Default::default()
                });
                scope
                    .by_name
                    .insert(name.to_owned(), scope.metrics.len() - 1);
                scope.metrics.len() - 1
            }
        };
        &mut scope.metrics[index]
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
                    scope_metrics: r
                        .scopes
                        .into_iter()
                        .map(|s| ScopeMetrics {
                            scope: Some(match s.key {
                                Some((name, version)) => InstrumentationScope {
                                    name,
                                    version,
                                    ..Default::default()
                                },
                                None => scope(),
                            }),
                            metrics: s.metrics,
                            ..Default::default()
                        })
                        .collect(),
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
