//! The `attributes` and `resource` processors: apply the shared action engine to item attributes (selected by
//! `include` / `exclude`) or to resource attributes.
//!
//! Lifecycle: built per pipeline; stateless, nothing held, nothing to flush. Guarantees: every batch goes on
//! with its acknowledgements (nothing is dropped here); a request no action applies to passes untouched,
//! still in wire form and still shared with the other pipelines, after a read-only look that allocates
//! nothing per attribute. A request that cannot be decoded (impossible for validated wire bytes) is rejected.

use otlake_core::{Batch, ExportRequest, Outcome, PayloadDecodeError, Processor};

use crate::actions::Actions;
use crate::items::{any_item, edit_items, edit_resources, resources};
use crate::matcher::{Item, Matcher};

/// Changes `batch`'s request with `edit` if `needs_edit` says a change is due; rejects it if it cannot be
/// decoded.
fn edit_batch(
    mut batch: Batch,
    out: &mut Vec<Batch>,
    needs_edit: impl FnOnce(&ExportRequest) -> bool,
    edit: impl FnOnce(&mut ExportRequest),
) {
    if batch.item_count() == 0 {
        out.push(batch);
        return;
    }
    let result: Result<(), PayloadDecodeError> = (|| {
        if needs_edit(batch.payload.request()?) {
            edit(batch.payload_mut().request_mut()?);
        }
        Ok(())
    })();
    match result {
        Ok(()) => out.push(batch),
        Err(e) => batch.acks.resolve(Outcome::rejected(e.to_string())),
    }
}

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

    fn selects(&self, item: &Item<'_>) -> bool {
        self.include.as_ref().is_none_or(|m| m.matches(item))
            && !self.exclude.as_ref().is_some_and(|m| m.matches(item))
    }
}

impl Processor for AttributesProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        edit_batch(
            batch,
            out,
            |request| {
                any_item(request, |item| {
                    self.actions.would_change(item.attributes) && self.selects(item)
                })
            },
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
}

impl Processor for ResourceProcessor {
    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        edit_batch(
            batch,
            out,
            |request| resources(request).any(|attrs| self.actions.would_change(attrs)),
            |request| edit_resources(request, |attrs| self.actions.apply(attrs)),
        );
    }
}
