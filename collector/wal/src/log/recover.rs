//! Recovery at open: every segment scanned, damage reported, what was delivered deleted, and the sequence the
//! log continues from.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Result;

use super::checkpoint::read_checkpoint;
use super::scan::{Damage, scan_segment};
use super::segment::{RecoveredEntry, Segment, list_segments, remove};

/// What [`Wal::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Intact records not yet delivered, in sequence order: what must be replayed.
    pub entries: Vec<RecoveredEntry>,
    /// Damaged tails that were skipped (a torn write after a power loss, or corruption).
    pub damage: Vec<Damage>,
    /// Segments deleted because everything in them had been delivered.
    pub segments_removed: usize,
}

/// What recovery hands the log it opens.
pub(crate) struct Recovered {
    /// Segments still holding undelivered records, oldest first.
    pub(crate) segments: VecDeque<Segment>,
    pub(crate) recovery: Recovery,
    /// The sequence the next record gets.
    pub(crate) next_sequence: u64,
    /// First sequence not yet delivered.
    pub(crate) checkpoint: u64,
}

/// Microseconds since the Unix epoch: where a brand-new log starts numbering.
fn clock_base() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
        .unwrap_or(1)
        .max(1)
}

/// Scans the log in `dir` (already locked by the caller).
pub(crate) fn recover(dir: &Path) -> Result<Recovered> {
    let checkpoint = read_checkpoint(dir)?;

    let mut found = list_segments(dir)?;
    found.sort_by_key(|s| s.first);
    let mut recovery = Recovery::default();
    let mut next_sequence = checkpoint.unwrap_or(0);
    let mut kept = VecDeque::new();
    for segment in found {
        let scan = scan_segment(&segment)?;
        if let Some(damage) = scan.damage {
            recovery.damage.push(damage);
        }
        // The end of what the segment holds: one past its last intact record.
        let end = scan
            .entries
            .last()
            .map_or(segment.first, |e| e.sequence + 1);
        next_sequence = next_sequence.max(end).max(segment.first);
        let delivered = checkpoint.unwrap_or(0);
        if end <= delivered || scan.entries.is_empty() {
            remove(&segment.path)?;
            recovery.segments_removed += 1;
            continue;
        }
        recovery
            .entries
            .extend(scan.entries.into_iter().filter(|e| e.sequence >= delivered));
        kept.push_back(segment);
    }
    if next_sequence == 0 {
        next_sequence = clock_base();
    }
    let checkpoint = checkpoint.unwrap_or(
        next_sequence.min(
            recovery
                .entries
                .first()
                .map_or(next_sequence, |e| e.sequence),
        ),
    );
    Ok(Recovered {
        segments: kept,
        recovery,
        next_sequence,
        checkpoint,
    })
}
