//! The group levels of an OTLP export request read from wire bytes, the same for every signal: request →
//! resource groups (field 1) → scope groups (field 2) → items (field 2), each group with its `resource` or
//! `scope` (field 1) and `schema_url` (field 3).
//!
//! `Resource` and `InstrumentationScope` are decoded with prost once per group (a group's fields may come
//! after its items: field order is free on the wire, so each group is walked twice, once for its own fields
//! and once for its items); a message given twice is merged, as prost merges it. Items are handed to a
//! [`WireItems`] with their group.

use otlake_core::proto::common::v1::InstrumentationScope;
use otlake_core::proto::resource::v1::Resource;
use otlake_core::wire::{FieldCursor, Part, WireError};

use super::wire_attrs::{message, string, wire_error};

/// The groups an item belongs to.
pub(crate) struct Group<'g> {
    pub(crate) resource: Option<&'g Resource>,
    pub(crate) resource_schema_url: &'g str,
    pub(crate) scope: Option<&'g InstrumentationScope>,
    pub(crate) scope_schema_url: &'g str,
}

/// What takes the items of a request (spans, log records).
pub(crate) trait WireItems<'a> {
    /// Appends one item, whose fields `item` walks, as a row of `group`.
    fn append_item(&mut self, item: FieldCursor<'a>, group: &Group<'_>) -> Result<(), WireError>;

    /// A resource group ended (its `Resource` is dropped: forget encodings keyed by its address).
    fn end_resource(&mut self);

    /// A scope group ended (likewise).
    fn end_scope(&mut self);
}

/// Hands every item of `request` to `items`, in order.
pub(crate) fn walk_request<'a>(
    request: &'a [u8],
    items: &mut impl WireItems<'a>,
) -> Result<(), WireError> {
    let top = FieldCursor::new(request);
    let mut fields = top;
    while let Some((tag, field)) = fields.next_field()? {
        if tag == 1 {
            let group = top.enter(message(field)?)?;
            let result = walk_resource_group(group, items);
            items.end_resource();
            result?;
        }
    }
    Ok(())
}

fn walk_resource_group<'a>(
    group: FieldCursor<'a>,
    items: &mut impl WireItems<'a>,
) -> Result<(), WireError> {
    let (resource, schema_url) = group_fields::<Resource>(group, Part::Resource)?;
    let mut fields = group;
    while let Some((tag, field)) = fields.next_field()? {
        if tag == 2 {
            let scope_group = group.enter(message(field)?)?;
            let result = walk_scope_group(scope_group, resource.as_ref(), schema_url, items);
            items.end_scope();
            result?;
        }
    }
    Ok(())
}

fn walk_scope_group<'a>(
    group: FieldCursor<'a>,
    resource: Option<&Resource>,
    resource_schema_url: &str,
    items: &mut impl WireItems<'a>,
) -> Result<(), WireError> {
    let (scope, scope_schema_url) =
        group_fields::<InstrumentationScope>(group, Part::InstrumentationScope)?;
    let info = Group {
        resource,
        resource_schema_url,
        scope: scope.as_ref(),
        scope_schema_url,
    };
    let mut fields = group;
    while let Some((tag, field)) = fields.next_field()? {
        if tag == 2 {
            items.append_item(group.enter(message(field)?)?, &info)?;
        }
    }
    Ok(())
}

/// A group's own fields: its message (field 1, decoded, merged if given twice) and schema URL (field 3); the
/// items (field 2) are only checked to be length-delimited here.
fn group_fields<'a, M: prost::Message + Default>(
    group: FieldCursor<'a>,
    part: Part,
) -> Result<(Option<M>, &'a str), WireError> {
    let mut decoded: Option<M> = None;
    let mut schema_url = "";
    let mut fields = group;
    while let Some((tag, field)) = fields.next_field()? {
        match tag {
            1 => {
                let body = message(field)?;
                group.enter(body)?.validate_as(part)?;
                decoded
                    .get_or_insert_with(M::default)
                    .merge(body)
                    .map_err(|_| wire_error("a resource or scope does not decode"))?;
            }
            2 => {
                message(field)?;
            }
            3 => schema_url = string(field)?,
            _ => {}
        }
    }
    Ok((decoded, schema_url))
}
