//! Ids (trace, span, log record uid) as lowercase hex, through a byte → two hex digits table instead of
//! `core::fmt`; an empty id is NULL, so `parent_span_id IS NULL` finds root spans.

/// Every byte's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    table
};

/// The longest id [`hex_str`] formats on the stack (trace ids are 16 bytes, span ids 8).
pub const MAX_STACK_ID: usize = 32;

/// `id` as lowercase hex in `buf`, or `None` when it is empty or longer than [`MAX_STACK_ID`] bytes.
pub fn hex_str<'a>(id: &[u8], buf: &'a mut [u8; 2 * MAX_STACK_ID]) -> Option<&'a str> {
    if id.is_empty() || id.len() > MAX_STACK_ID {
        return None;
    }
    for (pair, byte) in buf.chunks_exact_mut(2).zip(id) {
        pair.copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
    }
    // Hex digits are ASCII: this cannot fail.
    std::str::from_utf8(&buf[..2 * id.len()]).ok()
}

/// Writes `id` as lowercase hex into `out` (cleared first). Returns `false` for an empty id (written as NULL).
pub fn hex_id(id: &[u8], out: &mut String) -> bool {
    out.clear();
    if id.is_empty() {
        return false;
    }
    let mut buf = [0u8; 2 * MAX_STACK_ID];
    for chunk in id.chunks(MAX_STACK_ID) {
        if let Some(hex) = hex_str(chunk, &mut buf) {
            out.push_str(hex);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_lowercase_hex_and_empty_is_null() {
        let mut out = String::new();
        assert!(hex_id(&[0x00, 0xAB, 0x1f], &mut out));
        assert_eq!(out, "00ab1f");
        assert!(!hex_id(&[], &mut out));
    }
    #[test]
    fn long_ids_are_hex_too() {
        let mut out = String::new();
        let id: Vec<u8> = (0..40).collect();
        assert!(hex_id(&id, &mut out));
        let expected: String = id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, expected);
        let mut buf = [0u8; 2 * MAX_STACK_ID];
        assert_eq!(hex_str(&id, &mut buf), None, "too long for the stack");
        assert_eq!(hex_str(&[0xde, 0xad], &mut buf), Some("dead"));
    }
}
