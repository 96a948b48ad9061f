//! The `genai` processor: normalises span and log record attributes (renames, MLflow decoding) and adds the
//! cost to spans.
//!
//! Lifecycle: built per pipeline; stateless, nothing held, nothing to flush. Guarantees: nothing is dropped;
//! every batch goes on with its acknowledgements; a request that is already normal passes untouched (in wire
//! form, not copied) after a read-only look on its bytes (`wire`) that allocates nothing per attribute.

use otlake_core::{Batch, ExportRequest, Processor};

use crate::normalise::Normaliser;
use crate::wire;

pub struct GenaiProcessor {
    pub(crate) normaliser: Normaliser,
}

impl GenaiProcessor {
    pub fn new(normaliser: Normaliser) -> Self {
        GenaiProcessor { normaliser }
    }

    pub(crate) fn needs(&self, request: &ExportRequest) -> bool {
        let n = &self.normaliser;
        match request {
            ExportRequest::Traces(r) => r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .any(|s| n.needs(&s.attributes[..], true)),
            ExportRequest::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
                .any(|l| n.needs(&l.attributes[..], false)),
            ExportRequest::Metrics(_) => false,
        }
    }

    fn apply(&self, request: &mut ExportRequest) {
        let n = &self.normaliser;
        match request {
            ExportRequest::Traces(r) => r
                .resource_spans
                .iter_mut()
                .flat_map(|rs| &mut rs.scope_spans)
                .flat_map(|ss| &mut ss.spans)
                .for_each(|s| n.apply(&mut s.attributes, true)),
            ExportRequest::Logs(r) => r
                .resource_logs
                .iter_mut()
                .flat_map(|rl| &mut rl.scope_logs)
                .flat_map(|sl| &mut sl.log_records)
                .for_each(|l| n.apply(&mut l.attributes, false)),
            ExportRequest::Metrics(_) => {}
        }
    }
}

impl Processor for GenaiProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        let this = &*self;
        batch.edit_into(
            out,
            |signal, chunks| {
                wire::needs(&this.normaliser, signal, chunks.iter().map(|c| c.as_ref()))
            },
            |request| this.needs(request),
            |request| this.apply(request),
        );
    }
}
