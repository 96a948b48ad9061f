//! The `resourcedetection` processor: puts the detected attributes on every resource.
//!
//! Lifecycle: built per pipeline without I/O; the environment and the host name are read once, on the first
//! batch (a processor has no start hook; the pipeline task owns it). Guarantees: nothing is dropped; every
//! batch goes on with its acknowledgements; a request whose resources already carry the detected values
//! passes untouched (in wire form, not copied).

use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::{Batch, ExportRequest, Outcome, Processor};

use crate::config::ResourceDetectionConfig;
use crate::detect::{detect, system_hostname};

/// Reads one environment variable.
pub type EnvReader = Box<dyn Fn(&str) -> Option<String> + Send>;

pub struct ResourceDetectionProcessor {
    config: ResourceDetectionConfig,
    env: EnvReader,
    detected: Option<Vec<(String, String)>>,
}

fn string_of(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

/// An SDK's placeholder when the application named no service.
fn is_default_service(key: &str, kv: &KeyValue) -> bool {
    key == "service.name" && string_of(kv).is_some_and(|s| s.starts_with("unknown_service"))
}

impl ResourceDetectionProcessor {
    /// `env` reads an environment variable (the process environment in the daemon; a map in tests).
    pub fn new(config: ResourceDetectionConfig, env: EnvReader) -> Self {
        ResourceDetectionProcessor {
            config,
            env,
            detected: None,
        }
    }

    fn detected(&mut self) -> &[(String, String)] {
        let (config, env) = (&self.config, &self.env);
        self.detected.get_or_insert_with(|| {
            detect(
                &config.detectors,
                &config.k8s,
                &|k: &str| env(k),
                &system_hostname,
            )
        })
    }

    fn needs(&self, detected: &[(String, String)], attrs: &[KeyValue]) -> bool {
        detected.iter().any(
            |(key, value)| match attrs.iter().find(|kv| kv.key == *key) {
                None => true,
                Some(kv) if is_default_service(key, kv) => true,
                Some(kv) => self.config.override_existing && string_of(kv) != Some(value.as_str()),
            },
        )
    }

    fn apply(&self, detected: &[(String, String)], attrs: &mut Vec<KeyValue>) {
        for (key, value) in detected {
            let set = Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.clone())),
            });
            match attrs.iter_mut().find(|kv| kv.key == *key) {
                None => attrs.push(KeyValue {
                    key: key.clone(),
                    value: set,
                    ..Default::default()
                }),
                Some(kv) if self.config.override_existing || is_default_service(key, kv) => {
                    kv.value = set;
                }
                Some(_) => {}
            }
        }
    }
}

impl Processor for ResourceDetectionProcessor {
    fn process(&mut self, mut batch: Batch, out: &mut Vec<Batch>) {
        if batch.item_count() == 0 {
            out.push(batch);
            return;
        }
        let detected = self.detected().to_vec();
        if detected.is_empty() {
            out.push(batch);
            return;
        }
        let needs = match batch.payload.request() {
            Ok(ExportRequest::Traces(r)) => r.resource_spans.iter().any(|x| {
                self.needs(
                    &detected,
                    x.resource.as_ref().map_or(&[], |r| &r.attributes[..]),
                )
            }),
            Ok(ExportRequest::Logs(r)) => r.resource_logs.iter().any(|x| {
                self.needs(
                    &detected,
                    x.resource.as_ref().map_or(&[], |r| &r.attributes[..]),
                )
            }),
            Ok(ExportRequest::Metrics(r)) => r.resource_metrics.iter().any(|x| {
                self.needs(
                    &detected,
                    x.resource.as_ref().map_or(&[], |r| &r.attributes[..]),
                )
            }),
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        };
        if needs {
            let resources: Vec<&mut Option<otlake_core::proto::resource::v1::Resource>> =
                match batch.payload_mut().request_mut() {
                    Ok(ExportRequest::Traces(r)) => r
                        .resource_spans
                        .iter_mut()
                        .map(|x| &mut x.resource)
                        .collect(),
                    Ok(ExportRequest::Logs(r)) => r
                        .resource_logs
                        .iter_mut()
                        .map(|x| &mut x.resource)
                        .collect(),
                    Ok(ExportRequest::Metrics(r)) => r
                        .resource_metrics
                        .iter_mut()
                        .map(|x| &mut x.resource)
                        .collect(),
                    Err(e) => {
                        batch.acks.resolve(Outcome::rejected(e.to_string()));
                        return;
                    }
                };
            for resource in resources {
                self.apply(
                    &detected,
                    &mut resource.get_or_insert_with(Default::default).attributes,
                );
            }
        }
        out.push(batch);
    }
}
