//! [`append_id`]: a trace or span id into a string column as lowercase hex, or NULL when it is empty (so
//! `parent_span_id IS NULL` finds root spans); formatted on the stack, without a `String` per id.

use deltalake::arrow::array::StringBuilder;

use crate::encode;

/// Appends an id as hex, or NULL when empty.
pub(crate) fn append_id(builder: &mut StringBuilder, id: &[u8], scratch: &mut String) {
    let mut buf = [0u8; 2 * encode::MAX_STACK_ID];
    if let Some(hex) = encode::hex_str(id, &mut buf) {
        builder.append_value(hex);
    } else if encode::hex_id(id, scratch) {
        builder.append_value(scratch.as_str());
    } else {
        builder.append_null();
    }
}
