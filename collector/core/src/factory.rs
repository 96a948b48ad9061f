//! Factories: how a plugin turns its YAML section into a running component.
//!
//! A plugin writes two things: its config struct (`serde`, `deny_unknown_fields`, `Default`) and one typed
//! factory: [`ReceiverFactory`], [`ProcessorFactory`] or [`ExporterFactory`], each on top of [`Factory`]. The
//! key design decision (Vector's "validated sink"): the YAML is parsed and checked exactly once, by
//! [`DynFactory::validate`], into a [`ValidatedConfig`] that holds the typed value; `build` takes that typed
//! value and never parses or re-checks. Blanket impls turn every typed factory into the object-safe
//! [`DynFactory`] / [`DynReceiverFactory`] / [`DynProcessorFactory`] / [`DynExporterFactory`] that the
//! service's registry holds, so every plugin reports its problems the same way: all of them, each with its
//! path inside the component (`protocols.grpc.endpoint`).
//!
//! Lifecycle, as in the OpenTelemetry Collector: `validate` is pure (no I/O), `build` does no I/O, and I/O
//! starts in the component's `run`.

use std::any::Any;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::component::{ComponentId, Exporter, Processor, Receiver};
use crate::config::{ConfigError, parse_config};
use crate::signal::Signal;

/// What every typed factory tells about its component type, and how its config is checked.
pub trait Factory: Send + Sync + 'static {
    /// The component's YAML section, parsed by serde (`deny_unknown_fields`; `Default` for an empty section).
    type Config: DeserializeOwned + Default + Send + Sync + 'static;

    /// The YAML type name (`otlp`, `batch`, `delta`, ...).
    fn type_name(&self) -> &'static str;
    /// The signals the component can handle.
    fn signals(&self) -> &'static [Signal];
    /// One line for `otlake components`.
    fn description(&self) -> &'static str;
    /// Checks what serde cannot (ranges, combinations); pure; every problem, with its path in the section.
    fn validate(&self, _config: &Self::Config) -> Result<(), Vec<ConfigError>> {
        Ok(())
    }

    /// Parses a section (`null` means all defaults) and checks it: the typed form of
    /// [`DynFactory::validate`], for tools and tests that hold the concrete factory.
    fn parse(&self, section: &Value) -> Result<Self::Config, Vec<ConfigError>>
    where
        Self: Sized,
    {
        let config: Self::Config = parse_config(section).map_err(|e| vec![e])?;
        self.validate(&config)?;
        Ok(config)
    }
}

/// Builds a receiver from its validated config. One receiver per id, shared by the pipelines that list it.
pub trait ReceiverFactory: Factory {
    fn build(
        &self,
        id: &ComponentId,
        config: Self::Config,
    ) -> Result<Box<dyn Receiver>, ConfigError>;

    /// Addresses the receiver will listen on (to find two receivers on one port before binding).
    fn listen_addresses(&self, _config: &Self::Config) -> Vec<String> {
        Vec::new()
    }
}

/// Builds a processor from its validated config: one instance per pipeline, `signal` being that pipeline's.
pub trait ProcessorFactory: Factory {
    fn build(
        &self,
        id: &ComponentId,
        config: &Self::Config,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError>;
}

/// Builds an exporter from its validated config: one per id, shared by every pipeline that lists it;
/// `signals` are those pipelines' signals (a check that depends on them may fail here, with its path).
pub trait ExporterFactory: Factory {
    fn build(
        &self,
        id: &ComponentId,
        config: Self::Config,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError>;
}

/// A component's section after its factory's `validate` accepted it: the typed config, held type-erased so
/// the registry can keep configs of every plugin side by side until `build`.
pub struct ValidatedConfig {
    type_name: &'static str,
    config: Box<dyn Any + Send + Sync>,
}

impl ValidatedConfig {
    fn new<C: Send + Sync + 'static>(type_name: &'static str, config: C) -> Self {
        ValidatedConfig {
            type_name,
            config: Box::new(config),
        }
    }

    /// The type name of the factory that validated it.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn typed<C: 'static>(&self) -> Result<&C, ConfigError> {
        self.config.downcast_ref().ok_or_else(|| self.mismatch())
    }

    fn into_typed<C: 'static>(self) -> Result<C, ConfigError> {
        let mismatch = self.mismatch();
        self.config
            .downcast()
            .map(|boxed| *boxed)
            .map_err(|_| mismatch)
    }

    // Only a service bug (a config validated by one factory handed to another) gets here.
    fn mismatch(&self) -> ConfigError {
        ConfigError::new(
            "",
            format!(
                "internal error: a `{}` configuration was handed to another component type",
                self.type_name
            ),
        )
    }
}

impl std::fmt::Debug for ValidatedConfig {
    // The typed config may hold secrets: only say whose it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidatedConfig({})", self.type_name)
    }
}

/// The object-safe face of a [`Factory`], for the registry. Implemented for every typed factory.
pub trait DynFactory: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn signals(&self) -> &'static [Signal];
    fn description(&self) -> &'static str;
    /// Parses and checks a section (`null` means all defaults); every problem, each with its path.
    fn validate(&self, section: &Value) -> Result<ValidatedConfig, Vec<ConfigError>>;
}

impl<F: Factory> DynFactory for F {
    fn type_name(&self) -> &'static str {
        Factory::type_name(self)
    }

    fn signals(&self) -> &'static [Signal] {
        Factory::signals(self)
    }

    fn description(&self) -> &'static str {
        Factory::description(self)
    }

    fn validate(&self, section: &Value) -> Result<ValidatedConfig, Vec<ConfigError>> {
        let config = Factory::parse(self, section)?;
        Ok(ValidatedConfig::new(Factory::type_name(self), config))
    }
}

/// The object-safe face of a [`ReceiverFactory`].
pub trait DynReceiverFactory: DynFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: ValidatedConfig,
    ) -> Result<Box<dyn Receiver>, ConfigError>;
    fn listen_addresses(&self, config: &ValidatedConfig) -> Vec<String>;
}

impl<F: ReceiverFactory> DynReceiverFactory for F {
    fn build(
        &self,
        id: &ComponentId,
        config: ValidatedConfig,
    ) -> Result<Box<dyn Receiver>, ConfigError> {
        ReceiverFactory::build(self, id, config.into_typed()?)
    }

    fn listen_addresses(&self, config: &ValidatedConfig) -> Vec<String> {
        config
            .typed()
            .map(|c| ReceiverFactory::listen_addresses(self, c))
            .unwrap_or_default()
    }
}

/// The object-safe face of a [`ProcessorFactory`].
pub trait DynProcessorFactory: DynFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: &ValidatedConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError>;
}

impl<F: ProcessorFactory> DynProcessorFactory for F {
    fn build(
        &self,
        id: &ComponentId,
        config: &ValidatedConfig,
        signal: Signal,
    ) -> Result<Box<dyn Processor>, ConfigError> {
        ProcessorFactory::build(self, id, config.typed()?, signal)
    }
}

/// The object-safe face of an [`ExporterFactory`].
pub trait DynExporterFactory: DynFactory {
    fn build(
        &self,
        id: &ComponentId,
        config: ValidatedConfig,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError>;
}

impl<F: ExporterFactory> DynExporterFactory for F {
    fn build(
        &self,
        id: &ComponentId,
        config: ValidatedConfig,
        signals: &[Signal],
    ) -> Result<Box<dyn Exporter>, ConfigError> {
        ExporterFactory::build(self, id, config.into_typed()?, signals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct PassConfig {
        limit: u32,
        other: u32,
    }

    struct Pass;
    struct PassProcessor;

    impl Processor for PassProcessor {
        fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
            out.push(batch);
        }
    }

    impl Factory for Pass {
        type Config = PassConfig;
        fn type_name(&self) -> &'static str {
            "pass"
        }
        fn signals(&self) -> &'static [Signal] {
            &Signal::ALL
        }
        fn description(&self) -> &'static str {
            "passes batches on"
        }
        fn validate(&self, config: &PassConfig) -> Result<(), Vec<ConfigError>> {
            let mut errors = Vec::new();
            if config.limit == 0 {
                errors.push(ConfigError::new("limit", "must be at least 1"));
            }
            if config.other > config.limit {
                errors.push(ConfigError::new("other", "must not exceed `limit`"));
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors)
            }
        }
    }

    impl ProcessorFactory for Pass {
        fn build(
            &self,
            _id: &ComponentId,
            config: &PassConfig,
            _signal: Signal,
        ) -> Result<Box<dyn Processor>, ConfigError> {
            assert!(config.limit > 0, "build sees only validated configs");
            Ok(Box::new(PassProcessor))
        }
    }

    #[test]
    fn validate_reports_every_problem_of_the_typed_checks() {
        let factory: &dyn DynProcessorFactory = &Pass;
        let errors = factory
            .validate(&serde_json::json!({"limit": 0, "other": 3}))
            .expect_err("two problems");
        let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["limit", "other"]);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let factory: &dyn DynProcessorFactory = &Pass;
        let errors = factory
            .validate(&serde_json::json!({"limt": 1}))
            .expect_err("unknown key");
        assert_eq!(errors[0].path, "limt");
        assert!(errors[0].message.contains("unknown field"), "{errors:?}");
    }

    #[test]
    fn build_takes_the_validated_value() {
        let factory: &dyn DynProcessorFactory = &Pass;
        let validated = factory
            .validate(&serde_json::json!({"limit": 2}))
            .expect("valid");
        assert_eq!(validated.type_name(), "pass");
        let id = ComponentId::new("pass");
        assert!(factory.build(&id, &validated, Signal::Traces).is_ok());
    }

    #[test]
    fn a_config_of_another_type_is_an_error_not_a_panic() {
        let validated = ValidatedConfig::new("other", 7u8);
        let id = ComponentId::new("pass");
        let factory: &dyn DynProcessorFactory = &Pass;
        let err = factory
            .build(&id, &validated, Signal::Traces)
            .err()
            .expect("mismatch");
        assert!(err.message.contains("`other`"), "{err}");
    }
}
