//! The explicit list of component factories the daemon links, keyed by YAML type name.

use std::collections::BTreeMap;
use std::sync::Arc;

use otlake_core::{
    DynExporterFactory, DynFactory, DynProcessorFactory, DynReceiverFactory, ExporterFactory,
    ProcessorFactory, ReceiverFactory, Signal,
};

/// Receivers, processors and exporters by type name.
#[derive(Default, Clone)]
pub struct Registry {
    pub(crate) receivers: BTreeMap<&'static str, Arc<dyn DynReceiverFactory>>,
    pub(crate) processors: BTreeMap<&'static str, Arc<dyn DynProcessorFactory>>,
    pub(crate) exporters: BTreeMap<&'static str, Arc<dyn DynExporterFactory>>,
}

/// One line of `otlake components`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    pub kind: &'static str,
    pub type_name: &'static str,
    pub signals: Vec<Signal>,
    pub description: &'static str,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_receiver(mut self, factory: impl ReceiverFactory) -> Self {
        self.receivers
            .insert(DynFactory::type_name(&factory), Arc::new(factory));
        self
    }

    pub fn with_processor(mut self, factory: impl ProcessorFactory) -> Self {
        self.processors
            .insert(DynFactory::type_name(&factory), Arc::new(factory));
        self
    }

    pub fn with_exporter(mut self, factory: impl ExporterFactory) -> Self {
        self.exporters
            .insert(DynFactory::type_name(&factory), Arc::new(factory));
        self
    }

    /// Every registered component, receivers first.
    pub fn components(&self) -> Vec<ComponentInfo> {
        fn info(kind: &'static str, f: &dyn DynFactory) -> ComponentInfo {
            ComponentInfo {
                kind,
                type_name: f.type_name(),
                signals: f.signals().to_vec(),
                description: f.description(),
            }
        }
        let receivers = self
            .receivers
            .values()
            .map(|f| info("receiver", f.as_ref()));
        let processors = self
            .processors
            .values()
            .map(|f| info("processor", f.as_ref()));
        let exporters = self
            .exporters
            .values()
            .map(|f| info("exporter", f.as_ref()));
        receivers.chain(processors).chain(exporters).collect()
    }
}
