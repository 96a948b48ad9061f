//! [`Splitter`]: a file's bytes → entries' text, with their offsets.
//!
//! Lines end at `\n`. A line longer than `max_log_size` keeps its first `max_log_size` bytes (cut at a
//! character boundary) and is marked with its full size; the rest of it is read and skipped, never held, so a
//! file without newlines costs at most `max_log_size` of memory. Text is decoded as UTF-8 with invalid bytes
//! replaced by U+FFFD: a line is never refused. With `multiline`, lines are joined into one entry by a start or
//! an end pattern (the joined entry is capped the same way).
//!
//! Every piece of text comes out with the offsets of its first byte and of the byte after its newline, which is
//! what a checkpoint records once the entry is delivered.

use regex::Regex;

/// How a file's bytes become entries' text (from the receiver's config).
#[derive(Clone, Debug)]
pub struct SplitOptions {
    pub max_size: usize,
    pub multiline: Option<Multiline>,
    pub preserve_leading: bool,
    pub preserve_trailing: bool,
}

/// How lines join.
#[derive(Clone, Debug)]
pub enum Multiline {
    /// A matching line starts an entry.
    Start(Regex),
    /// A matching line ends an entry.
    End(Regex),
}

/// One piece of text and where it was in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub start: u64,
    pub end: u64,
    /// The size before truncation, when the piece was cut at `max_size`.
    pub truncated_from: Option<usize>,
}

/// A line too long to hold: its kept head, and how long it is so far.
struct Oversize {
    head: Vec<u8>,
    size: usize,
}

/// Splits one file. See the module docs.
pub struct Splitter {
    /// Bytes of the current line (no newline yet).
    line: Vec<u8>,
    /// Offset of the current line's first byte.
    line_start: u64,
    /// Offset of the next byte to be pushed.
    position: u64,
    oversize: Option<Oversize>,
    /// Lines joined so far (multiline).
    group: Option<Piece>,
}

impl Splitter {
    /// A splitter whose next byte is at `offset`.
    pub fn new(offset: u64) -> Self {
        Splitter {
            line: Vec::new(),
            line_start: offset,
            position: offset,
            oversize: None,
            group: None,
        }
    }

    /// Where the next read starts.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether bytes or lines are held waiting for a newline or for the rest of a multiline entry.
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || self.oversize.is_some() || self.group.is_some()
    }

    /// Bytes held (for the memory bound).
    pub fn held_bytes(&self) -> usize {
        self.line.len()
            + self.oversize.as_ref().map_or(0, |o| o.head.len())
            + self.group.as_ref().map_or(0, |g| g.text.len())
    }

    /// Takes the bytes read at [`Splitter::position`]; finished pieces go to `out`.
    pub fn push(&mut self, options: &SplitOptions, mut data: &[u8], out: &mut Vec<Piece>) {
        while !data.is_empty() {
            let newline = memchr::memchr(b'\n', data);
            let taken = newline.map_or(data.len(), |i| i + 1);
            let (chunk, rest) = data.split_at(taken);
            let content = newline.map_or(chunk, |i| &chunk[..i]);
            self.position += taken as u64;
            data = rest;
            match &mut self.oversize {
                Some(oversize) => oversize.size += content.len(),
                None if self.line.len() + content.len() > options.max_size => {
                    let mut head = std::mem::take(&mut self.line);
                    let size = head.len() + content.len();
                    head.extend_from_slice(
                        &content[..options
                            .max_size
                            .saturating_sub(head.len())
                            .min(content.len())],
                    );
                    self.oversize = Some(Oversize { head, size });
                }
                None => self.line.extend_from_slice(content),
            }
            if newline.is_some() {
                self.end_line(options, out);
            }
        }
    }

    /// Ends the current line at `position` and passes it on.
    fn end_line(&mut self, options: &SplitOptions, out: &mut Vec<Piece>) {
        let piece = self.take_line(options);
        self.join(options, piece, out);
    }

    /// The current line (its kept head, if it was too long) as a piece ending at `position`; the next line
    /// starts there.
    fn take_line(&mut self, options: &SplitOptions) -> Piece {
        let (bytes, truncated_from) = match self.oversize.take() {
            Some(Oversize { head, size }) => (head, Some(size)),
            None => (std::mem::take(&mut self.line), None),
        };
        let piece = Piece {
            text: decode(bytes, options),
            start: self.line_start,
            end: self.position,
            truncated_from,
        };
        self.line_start = self.position;
        piece
    }

    fn join(&mut self, options: &SplitOptions, piece: Piece, out: &mut Vec<Piece>) {
        match &options.multiline {
            None => out.push(piece),
            Some(Multiline::Start(pattern)) => {
                if pattern.is_match(&piece.text) {
                    out.extend(self.group.take());
                }
                self.append(options, piece);
            }
            Some(Multiline::End(pattern)) => {
                let ends = pattern.is_match(&piece.text);
                self.append(options, piece);
                if ends {
                    out.extend(self.group.take());
                }
            }
        }
    }

    fn append(&mut self, options: &SplitOptions, piece: Piece) {
        let Some(group) = &mut self.group else {
            self.group = Some(piece);
            return;
        };
        let size = group.truncated_from.unwrap_or(group.text.len())
            + 1
            + piece.truncated_from.unwrap_or(piece.text.len());
        if group.text.len() + 1 + piece.text.len() > options.max_size {
            group.truncated_from = Some(size);
            let room = options.max_size.saturating_sub(group.text.len());
            if room > 0 {
                group.text.push('\n');
                let text = &piece.text[..piece.text.floor_char_boundary(room - 1)];
                group.text.push_str(text);
            }
        } else {
            group.text.push('\n');
            group.text.push_str(&piece.text);
            if group.truncated_from.is_some() || piece.truncated_from.is_some() {
                group.truncated_from = Some(size);
            }
        }
        group.end = piece.end;
    }

    /// Gives up what is held: a last line without its newline, and a multiline entry nothing has ended.
    pub fn flush(&mut self, options: &SplitOptions, out: &mut Vec<Piece>) {
        if !self.line.is_empty() || self.oversize.is_some() {
            // Joined as a line of its own; the bytes after it (should the line go on) start the next one.
            let piece = self.take_line(options);
            match &options.multiline {
                None => out.push(piece),
                Some(_) => self.append(options, piece),
            }
        }
        out.extend(self.group.take());
    }
}

fn decode(bytes: Vec<u8>, options: &SplitOptions) -> String {
    // Valid UTF-8 (nearly every line) becomes the text without a copy; only a line with invalid bytes is copied
    // with them replaced.
    let mut text = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    if !options.preserve_trailing {
        text.truncate(text.trim_end().len());
    } else if text.ends_with('\r') {
        text.pop();
    }
    if !options.preserve_leading {
        let trimmed = text.len() - text.trim_start().len();
        text.drain(..trimmed);
    }
    if text.len() > options.max_size {
        // Replacement characters (3 bytes for 1) can grow a cut line past the limit.
        text.truncate(text.floor_char_boundary(options.max_size));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(max_size: usize, multiline: Option<Multiline>) -> SplitOptions {
        SplitOptions {
            max_size,
            multiline,
            preserve_leading: true,
            preserve_trailing: false,
        }
    }

    fn split(options: &SplitOptions, chunks: &[&[u8]]) -> (Vec<Piece>, Splitter) {
        let mut splitter = Splitter::new(0);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(options, chunk, &mut out);
        }
        (out, splitter)
    }

    #[test]
    fn lines_across_reads_with_offsets() {
        let o = options(100, None);
        let (out, splitter) = split(&o, &[b"one\ntw", b"o\r\nthr", b"ee"]);
        let texts: Vec<(&str, u64, u64)> = out
            .iter()
            .map(|p| (p.text.as_str(), p.start, p.end))
            .collect();
        assert_eq!(texts, [("one", 0, 4), ("two", 4, 9)]);
        assert!(splitter.has_pending());
        assert_eq!(splitter.position(), 14);
    }

    #[test]
    fn a_last_line_without_newline_comes_out_on_flush() {
        let o = options(100, None);
        let (_, mut splitter) = split(&o, &[b"one\npartial"]);
        let mut out = Vec::new();
        splitter.flush(&o, &mut out);
        assert_eq!(out[0].text, "partial");
        assert_eq!((out[0].start, out[0].end), (4, 11));
        splitter.push(&o, b" more\n", &mut out);
        assert_eq!(out[1].text, " more");
        assert_eq!(out[1].start, 11);
    }

    #[test]
    fn oversize_lines_are_cut_and_marked_and_the_rest_skipped() {
        let o = options(8, None);
        let long = [b'x'; 30];
        let (out, splitter) = split(&o, &[&long[..10], &long[10..], b"\nok\n"]);
        assert_eq!(out[0].text, "xxxxxxxx");
        assert_eq!(out[0].truncated_from, Some(30));
        assert_eq!(out[0].end, 31);
        assert_eq!(out[1].text, "ok");
        assert!(splitter.held_bytes() == 0);
    }

    #[test]
    fn invalid_utf8_is_replaced_never_refused() {
        let o = options(100, None);
        let (out, _) = split(&o, &[b"caf\xc3\xa9 \xff\xfe end\n"]);
        assert_eq!(out[0].text, "café \u{fffd}\u{fffd} end");
    }

    #[test]
    fn multiline_start_and_end_patterns() {
        let start = options(
            1000,
            Some(Multiline::Start(Regex::new(r"^\d{4}-").expect("re"))),
        );
        let (out, mut splitter) = split(&start, &[b"2024- a\n  more\n  more\n2024- b\n"]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "2024- a\n  more\n  more");
        assert_eq!(out[0].end, 22);
        let mut rest = Vec::new();
        splitter.flush(&start, &mut rest);
        assert_eq!(rest[0].text, "2024- b");

        let end = options(1000, Some(Multiline::End(Regex::new(r";$").expect("re"))));
        let (out, _) = split(&end, &[b"a\nb;\nc;\n"]);
        let texts: Vec<&str> = out.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["a\nb;", "c;"]);
    }

    #[test]
    fn a_joined_entry_is_capped_too() {
        let o = options(10, Some(Multiline::Start(Regex::new("^S").expect("re"))));
        let (out, _) = split(&o, &[b"S123456\n abcdef\nS\n"]);
        assert_eq!(out[0].text.len(), 10);
        assert_eq!(out[0].truncated_from, Some(15));
    }
}
