//! `otlake run -- CMD ARGS...`: the command line fills the command of the config's `process` receiver, and a
//! daemon that runs a command leaves SIGTERM and SIGINT to it (the receiver forwards them to the child and
//! ends the daemon when the child exits, with its exit code).

use anyhow::bail;
use otlake_service::Config;
use serde_json::Value;

/// The receiver type that runs a command.
const PROCESS: &str = "process";

fn is_process(key: &str) -> bool {
    key.split('/').next() == Some(PROCESS)
}

/// Sets `command` as the command of the config's one `process` receiver; an error if it has none or several.
pub fn fill(config: &mut Config, config_name: &str, command: &[String]) -> anyhow::Result<()> {
    let keys: Vec<String> = config
        .receivers
        .keys()
        .filter(|k| is_process(k))
        .cloned()
        .collect();
    let key = match keys.as_slice() {
        [key] => key,
        [] => bail!(
            "{config_name} has no `process` receiver to run `{}` in (add `receivers: {{process: {{}}}}` to a logs pipeline)",
            command.join(" ")
        ),
        several => bail!(
            "{config_name} has several `process` receivers ({}): which one `{}` belongs to is unclear; set `command` in the file instead",
            several.join(", "),
            command.join(" ")
        ),
    };
    let section = config
        .receivers
        .get_mut(key)
        .expect("the key was just listed");
    if section.is_null() {
        *section = Value::Object(Default::default());
    }
    let Some(section) = section.as_object_mut() else {
        bail!("{config_name}: receivers.{key} is not a map");
    };
    section.insert(
        "command".into(),
        Value::Array(command.iter().cloned().map(Value::String).collect()),
    );
    Ok(())
}

/// Whether a pipeline runs a `process` receiver: then the child, not otlake, decides when to stop.
pub fn runs_a_process(config: &Config) -> bool {
    config
        .service
        .pipelines
        .values()
        .any(|p| p.receivers.iter().any(|r| is_process(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> Vec<String> {
        vec!["python3".into(), "app.py".into()]
    }

    #[test]
    fn the_command_fills_the_one_process_receiver() {
        let mut config = Config::parse(
            "receivers:\n  process:\n    env: {A: b}\nexporters: {debug: }\nservice:\n  pipelines:\n    logs: {receivers: [process], exporters: [debug]}\n",
        )
        .expect("parses");
        fill(&mut config, "f.yaml", &command()).expect("filled");
        assert_eq!(
            config.receivers["process"],
            serde_json::json!({"env": {"A": "b"}, "command": ["python3", "app.py"]})
        );
        assert!(runs_a_process(&config));
    }

    #[test]
    fn none_or_several_process_receivers_is_an_error_naming_them() {
        let mut none = Config::parse(
            "receivers: {otlp: }\nexporters: {debug: }\nservice:\n  pipelines:\n    logs: {receivers: [otlp], exporters: [debug]}\n",
        )
        .expect("parses");
        let err = fill(&mut none, "f.yaml", &command()).expect_err("no process receiver");
        assert!(
            err.to_string().contains("has no `process` receiver"),
            "{err}"
        );
        assert!(!runs_a_process(&none));
        let mut several = Config::parse(
            "receivers: {process/a: , process/b: }\nexporters: {debug: }\nservice:\n  pipelines:\n    logs: {receivers: [process/a, process/b], exporters: [debug]}\n",
        )
        .expect("parses");
        let err = fill(&mut several, "f.yaml", &command()).expect_err("several");
        assert!(err.to_string().contains("process/a, process/b"), "{err}");
    }
}
