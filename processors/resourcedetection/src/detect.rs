//! The detectors: each turns the environment (read through a function, so tests give their own) into
//! resource attributes.

use crate::config::{Detector, K8sEnv};

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, values percent-encoded (W3C Baggage
/// octets); a malformed pair is skipped, as the SDKs do.
pub fn parse_resource_attributes(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `os.type` as the semantic conventions spell it.
fn os_type() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// `host.arch` as the semantic conventions spell it.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "x86",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// Runs `detectors` in order; a key found by an earlier detector is kept.
pub fn detect(
    detectors: &[Detector],
    k8s: &K8sEnv,
    env: &dyn Fn(&str) -> Option<String>,
    hostname: &dyn Fn() -> Option<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let add = |key: &str, value: String, out: &mut Vec<(String, String)>| {
        if !value.is_empty() && !out.iter().any(|(k, _)| k == key) {
            out.push((key.to_owned(), value));
        }
    };
    for detector in detectors {
        match detector {
            Detector::Env => {
                // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (the SDKs' rule).
                if let Some(name) = env("OTEL_SERVICE_NAME") {
                    add("service.name", name, &mut out);
                }
                for (k, v) in
                    parse_resource_attributes(&env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default())
                {
                    add(&k, v, &mut out);
                }
            }
            Detector::System => {
                if let Some(host) = hostname() {
                    add("host.name", host, &mut out);
                }
                add("os.type", os_type().to_owned(), &mut out);
                add("host.arch", host_arch().to_owned(), &mut out);
            }
            Detector::K8s => {
                for (key, var) in [
                    ("k8s.pod.name", &k8s.pod_name),
                    ("k8s.pod.uid", &k8s.pod_uid),
                    ("k8s.namespace.name", &k8s.namespace),
                    ("k8s.node.name", &k8s.node_name),
                    ("k8s.container.name", &k8s.container_name),
                    ("k8s.cluster.name", &k8s.cluster_name),
                ] {
                    if let Some(value) = env(var) {
                        add(key, value, &mut out);
                    }
                }
            }
        }
    }
    out
}

/// The machine's host name: the kernel's, else `$HOSTNAME`.
pub fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn detectors_in_order_with_configurable_downward_api_names() {
        let vars: BTreeMap<&str, &str> = [
            ("OTEL_SERVICE_NAME", "chat-api"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,team=ml%20platform, bad ,k8s.pod.name=from-env",
            ),
            ("MY_POD", "chat-api-7d9f"),
            ("K8S_NAMESPACE_NAME", "llm"),
            ("K8S_NODE_NAME", "node-3"),
        ]
        .into_iter()
        .collect();
        let env = |k: &str| vars.get(k).map(|v| (*v).to_owned());
        let k8s = K8sEnv {
            pod_name: "MY_POD".into(),
            ..K8sEnv::default()
        };
        let found = detect(
            &[Detector::Env, Detector::System, Detector::K8s],
            &k8s,
            &env,
            &|| Some("box-1".into()),
        );
        let get = |k: &str| {
            found
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("service.name"), Some("chat-api"));
        assert_eq!(get("team"), Some("ml platform"));
        assert_eq!(
            get("k8s.pod.name"),
            Some("from-env"),
            "the earlier detector wins"
        );
        assert_eq!(get("k8s.namespace.name"), Some("llm"));
        assert_eq!(get("k8s.node.name"), Some("node-3"));
        assert_eq!(get("k8s.container.name"), None, "unset: not invented");
        assert_eq!(get("host.name"), Some("box-1"));
        assert_eq!(get("os.type"), Some("linux"));
        let found = detect(&[Detector::K8s, Detector::Env], &k8s, &env, &|| None);
        assert_eq!(
            found
                .iter()
                .find(|(k, _)| k == "k8s.pod.name")
                .map(|(_, v)| v.as_str()),
            Some("chat-api-7d9f")
        );
    }
}
