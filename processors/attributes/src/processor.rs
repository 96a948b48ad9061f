//! The `attributes` and `resource` processors: apply the shared action engine to item attributes (selected by
//! `include` / `exclude`) or to resource attributes.
//!
//! Lifecycle: built per pipeline; stateless, nothing held, nothing to flush. Guarantees: every batch goes on
//! with its acknowledgements (nothing is dropped here); a request no action applies to passes untouched,
//! still in wire form and still shared with the other pipelines, after a read-only look on its bytes (`wire`)
//! that allocates nothing per item or attribute. A request that cannot be decoded (impossible for validated wire bytes) is rejected.

use otlake_core::attributes::Attributes;
use otlake_core::{Batch, ExportRequest, Processor, Signal};

use crate::actions::Actions;
use crate::items::{any_item, edit_items, edit_resources, resources};
use crate::matcher::{Item, Matcher};
use crate::wire;

/// `processors.attributes`.
pub struct AttributesProcessor {
    actions: Actions,
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

impl AttributesProcessor {
    pub(crate) fn new(
        actions: Actions,
        include: Option<Matcher>,
        exclude: Option<Matcher>,
    ) -> Self {
        AttributesProcessor {
            actions,
            include,
            exclude,
        }
    }

    fn selects<'a, A: Attributes<'a>>(&self, item: &Item<'a, A>) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(item))
            && !self.exclude.as_ref().is_some_and(|m| m.matches(item))
    }

    fn changes<'a, A: Attributes<'a>>(&self, item: &Item<'a, A>) -> bool {
        self.actions.would_change(item.attributes) && self.selects(item)
    }

    /// Whether any item of a decoded request would change.
    pub(crate) fn needs(&self, request: &ExportRequest) -> bool {
        any_item(request, |item| self.changes(item))
    }

    /// [`Self::needs`] on a request's wire chunks.
    pub(crate) fn needs_on_wire<'c>(
        &self,
        signal: Signal,
        chunks: impl IntoIterator<Item = &'c [u8]>,
    ) -> bool {
        wire::any_item(signal, chunks, |item| self.changes(item))
    }
}

impl Processor for AttributesProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        batch.edit_into(
            out,
            |signal, chunks| self.needs_on_wire(signal, chunks.iter().map(|c| c.as_ref())),
            |request| self.needs(request),
            |request| {
                edit_items(
                    request,
                    |item| self.selects(item),
                    |a| self.actions.apply(a),
                )
            },
        );
    }
}

/// `processors.resource`.
pub struct ResourceProcessor {
    actions: Actions,
}

impl ResourceProcessor {
    pub(crate) fn new(actions: Actions) -> Self {
        ResourceProcessor { actions }
    }

    /// Whether any resource of a decoded request would change.
    pub(crate) fn needs(&self, request: &ExportRequest) -> bool {
        resources(request).any(|attrs| self.actions.would_change(attrs))
    }

    /// [`Self::needs`] on a request's wire chunks.
    pub(crate) fn needs_on_wire<'c>(&self, chunks: impl IntoIterator<Item = &'c [u8]>) -> bool {
        wire::any_resource(chunks, |attrs| self.actions.would_change(attrs))
    }
}

impl Processor for ResourceProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        batch.edit_into(
            out,
            |_, chunks| self.needs_on_wire(chunks.iter().map(|c| c.as_ref())),
            |request| self.needs(request),
            |request| edit_resources(request, |attrs| self.actions.apply(attrs)),
        );
    }
}
