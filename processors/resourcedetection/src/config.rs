//! The `resourcedetection` processor's YAML: the Collector's `detectors` and `override`, and the names of the
//! environment variables the Kubernetes Downward API sets. Parsed by the factory; pure, no I/O.

use otlake_core::ConfigError;
use serde::Deserialize;

/// A source of resource attributes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`.
    Env,
    /// `host.name`, `os.type`, `host.arch`.
    System,
    /// Pod, namespace, node, container and cluster from Downward API environment variables.
    K8s,
}

/// The environment variables the `k8s` detector reads (set them with the Downward API's `fieldRef`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct K8sEnv {
    /// → `k8s.pod.name` (`fieldPath: metadata.name`).
    pub pod_name: String,
    /// → `k8s.pod.uid` (`fieldPath: metadata.uid`).
    pub pod_uid: String,
    /// → `k8s.namespace.name` (`fieldPath: metadata.namespace`).
    pub namespace: String,
    /// → `k8s.node.name` (`fieldPath: spec.nodeName`).
    pub node_name: String,
    /// → `k8s.container.name` (set by hand: the Downward API has no field for it).
    pub container_name: String,
    /// → `k8s.cluster.name` (set by hand).
    pub cluster_name: String,
}

impl Default for K8sEnv {
    fn default() -> Self {
        K8sEnv {
            pod_name: "K8S_POD_NAME".into(),
            pod_uid: "K8S_POD_UID".into(),
            namespace: "K8S_NAMESPACE_NAME".into(),
            node_name: "K8S_NODE_NAME".into(),
            container_name: "K8S_CONTAINER_NAME".into(),
            cluster_name: "K8S_CLUSTER_NAME".into(),
        }
    }
}

/// `processors.resourcedetection` in the YAML.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceDetectionConfig {
    /// Detectors in order; for a key two detectors find, the earlier one wins (as in the Collector).
    pub detectors: Vec<Detector>,
    /// Detected values replace the resource's own (the Collector's default); `false` only fills in absent keys.
    /// Either way a `service.name` the SDK defaulted (`unknown_service…`) counts as absent.
    #[serde(rename = "override")]
    pub override_existing: bool,
    /// The `k8s` detector's environment variables.
    pub k8s: K8sEnv,
}

impl Default for ResourceDetectionConfig {
    fn default() -> Self {
        ResourceDetectionConfig {
            detectors: vec![Detector::Env],
            override_existing: true,
            k8s: K8sEnv::default(),
        }
    }
}

impl ResourceDetectionConfig {
    /// Every problem with the configuration, each with its key.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        if self.detectors.is_empty() {
            errors.push(ConfigError::new(
                "detectors",
                "at least one of env, system, k8s",
            ));
        }
        for (i, d) in self.detectors.iter().enumerate() {
            if self.detectors[..i].contains(d) {
                errors.push(ConfigError::new(
                    format!("detectors.{i}"),
                    format!("{d:?} is listed twice"),
                ));
            }
        }
        let k = &self.k8s;
        for (key, value) in [
            ("pod_name", &k.pod_name),
            ("pod_uid", &k.pod_uid),
            ("namespace", &k.namespace),
            ("node_name", &k.node_name),
            ("container_name", &k.container_name),
            ("cluster_name", &k.cluster_name),
        ] {
            if value.is_empty() {
                errors.push(ConfigError::new(
                    format!("k8s.{key}"),
                    "must name an environment variable",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
