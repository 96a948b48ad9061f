//! The `resourcedetection` processor: puts the detected attributes on every resource.
//!
//! Lifecycle: built per pipeline without I/O; the environment and the host name are read once, on the first
//! batch (a processor has no start hook; the pipeline task owns it). Guarantees: nothing is dropped; every
//! batch goes on with its acknowledgements; a request whose resources already carry the detected values
//! passes untouched (in wire form, not copied) after a read-only look on its bytes that allocates nothing per
//! attribute.

use otlake_core::attributes::{Attributes, ValueRef};
use otlake_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlake_core::proto::resource::v1::Resource;
use otlake_core::wire::look::any_resource_group;
use otlake_core::wire::{FieldCursor, Misread, WireError};
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

fn resource_attributes(resource: &Option<Resource>) -> &[KeyValue] {
    resource.as_ref().map_or(&[], |r| &r.attributes)
}

/// An SDK's placeholder when the application named no service.
fn is_default_service(key: &str, value: ValueRef<'_>) -> bool {
    key == "service.name"
        && value
            .as_str()
            .is_some_and(|s| s.starts_with("unknown_service"))
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

    /// Detects once, on the first batch.
    fn detect_once(&mut self) {
        if self.detected.is_none() {
            let (config, env) = (&self.config, &self.env);
            self.detected = Some(detect(
                &config.detectors,
                &config.k8s,
                &|k: &str| env(k),
                &system_hostname,
            ));
        }
    }

    /// Whether applying would change a resource's attributes (decoded, or read on the wire).
    fn needs<'a>(&self, detected: &[(String, String)], attrs: impl Attributes<'a>) -> bool {
        detected.iter().any(|(key, value)| match attrs.get(key) {
            None => true,
            Some(v) if is_default_service(key, v) => true,
            Some(v) => self.config.override_existing && v.as_str() != Some(value.as_str()),
        })
    }

    /// [`Self::needs`] for any resource of a decoded request.
    fn needs_in(&self, detected: &[(String, String)], request: &ExportRequest) -> bool {
        match request {
            ExportRequest::Traces(r) => r
                .resource_spans
                .iter()
                .any(|x| self.needs(detected, resource_attributes(&x.resource))),
            ExportRequest::Logs(r) => r
                .resource_logs
                .iter()
                .any(|x| self.needs(detected, resource_attributes(&x.resource))),
            ExportRequest::Metrics(r) => r
                .resource_metrics
                .iter()
                .any(|x| self.needs(detected, resource_attributes(&x.resource))),
        }
    }

    /// [`Self::needs`] for any resource of a request still in wire form (`chunks`, see
    /// `Payload::wire_chunks`), read in place without decoding: a group without a resource has an empty list.
    /// Bytes it cannot read (impossible after validation) count as "would change", which sends the request to
    /// the decoded path, where the decode refuses it.
    fn needs_on_wire<'c>(
        &self,
        detected: &[(String, String)],
        chunks: impl IntoIterator<Item = &'c [u8]>,
    ) -> bool {
        chunks.into_iter().any(|chunk| {
            let misread = Misread::default();
            any_resource_group(FieldCursor::new(chunk), |group| {
                Ok::<_, WireError>(self.needs(detected, group.attributes(&misread)))
            })
            .unwrap_or(true)
                || misread.happened()
        })
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
                Some(kv)
                    if self.config.override_existing
                        || is_default_service(key, ValueRef::of(kv.value.as_ref())) =>
                {
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
        self.detect_once();
        let detected = self.detected.as_deref().unwrap_or_default();
        // A request still in wire form is looked at on its bytes: when its resources carry the detected values
        // already, it goes on undecoded.
        if detected.is_empty()
            || batch.nothing_to_do_on_wire(|_, chunks| {
                self.needs_on_wire(detected, chunks.iter().map(|c| c.as_ref()))
            })
        {
            out.push(batch);
            return;
        }
        let needs = match batch.payload.request() {
            Ok(request) => self.needs_in(detected, request),
            Err(e) => {
                batch.acks.resolve(Outcome::rejected(e.to_string()));
                return;
            }
        };
        if needs {
            let resources: Vec<&mut Option<Resource>> = match batch.payload_mut().request_mut() {
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
                    detected,
                    &mut resource.get_or_insert_with(Default::default).attributes,
                );
            }
        }
        out.push(batch);
    }
}

#[cfg(test)]
mod tests {
    use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use otlake_core::test_util::fuzz::{Rng, requests};
    use otlake_core::test_util::kv;
    use otlake_core::{Payload, Signal, parse_config};
    use prost::Message;
    use serde_json::json;

    use super::*;

    /// Resource keys and values: detected ones, an SDK's placeholder service, others.
    const WORDS: &[&str] = &[
        "service.name",
        "chat-api",
        "unknown_service:python",
        "deployment.environment.name",
        "production",
        "k",
        "",
    ];

    fn processor(override_existing: bool) -> ResourceDetectionProcessor {
        let config: ResourceDetectionConfig =
            parse_config(&json!({"detectors": ["env"], "override": override_existing}))
                .expect("parses");
        let mut p = ResourceDetectionProcessor::new(
            config,
            Box::new(|key: &str| match key {
                "OTEL_SERVICE_NAME" => Some("chat-api".to_owned()),
                "OTEL_RESOURCE_ATTRIBUTES" => {
                    Some("deployment.environment.name=production".to_owned())
                }
                _ => None,
            }),
        );
        p.detect_once();
        p
    }

    /// One span under a resource whose `resource` field occurs once per part (prost merges them).
    fn request(parts: &[Vec<KeyValue>]) -> Vec<u8> {
        let mut group = ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span::default()],
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        for attributes in parts {
            let resource = Resource {
                attributes: attributes.clone(),
                ..Default::default()
            };
            prost::encoding::message::encode(1, &resource, &mut group);
        }
        let mut request = Vec::new();
        prost::encoding::bytes::encode(1, &group, &mut request);
        request
    }

    /// Both looks on `bytes`, which must agree.
    fn looks(p: &ResourceDetectionProcessor, signal: Signal, bytes: &[u8]) -> bool {
        let detected = p.detected.as_deref().unwrap_or_default();
        let payload = Payload::from_wire(signal, bytes.to_vec().into()).expect("valid");
        let decoded = p.needs_in(detected, payload.request().expect("decodes"));
        let on_wire = p.needs_on_wire(detected, [bytes]);
        assert_eq!(on_wire, decoded, "{signal}: {bytes:?}");
        on_wire
    }

    /// The wire look answers exactly as the decoded look, with and without `override`: on resources that
    /// carry the detected values (also split over two occurrences of the field), on an SDK's placeholder
    /// service, and on random requests with repeated and merged resources and attributes.
    #[test]
    fn the_wire_look_answers_as_the_decoded_look() {
        let service = kv("service.name", "chat-api");
        let environment = kv("deployment.environment.name", "production");
        let other = kv("deployment.environment.name", "staging");
        for override_existing in [false, true] {
            let p = processor(override_existing);
            let traces = Signal::Traces;
            assert!(!looks(
                &p,
                traces,
                &request(&[vec![service.clone(), environment.clone()]])
            ));
            assert!(!looks(
                &p,
                traces,
                &request(&[vec![service.clone()], vec![environment.clone()]])
            ));
            assert!(looks(&p, traces, &request(&[vec![service.clone()]])));
            assert!(looks(&p, traces, &request(&[])));
            let placeholder = kv("service.name", "unknown_service:python");
            assert!(looks(
                &p,
                traces,
                &request(&[vec![placeholder, environment.clone()]])
            ));
            assert_eq!(
                looks(
                    &p,
                    traces,
                    &request(&[vec![service.clone(), other.clone()]])
                ),
                override_existing,
                "a value of its own stays unless `override`"
            );
            let mut rng = Rng(0x7e50);
            for signal in Signal::ALL {
                for _ in 0..300 {
                    looks(&p, signal, &requests::request(&mut rng, signal, WORDS));
                }
            }
        }
    }
}
