//! Recovery at open: every segment scanned, damage reported, what was delivered deleted, and the sequence the
//! log continues from.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Result, WalError};

use super::checkpoint::read_checkpoint;
use super::scan::{Damage, scan_segment};
use super::segment::{RecoveredEntry, Segment, list_segments, remove};

/// Where damaged segments are kept aside, inside the log's directory.
pub const DAMAGED_DIR: &str = "damaged";

/// What [`Wal::open`] found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Intact records not yet delivered, in sequence order: what must be replayed.
    pub entries: Vec<RecoveredEntry>,
    /// Damaged bytes that were skipped (a torn write after a power loss, or corruption); every intact record
    /// around them is kept.
    pub damage: Vec<Damage>,
    /// Segments deleted because everything in them had been delivered (or nothing in them was intact).
    pub segments_removed: usize,
    /// Where each damaged segment was kept aside (`damaged/` in the log's directory), for an operator to
    /// inspect and delete.
    pub quarantined: Vec<PathBuf>,
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
        next_sequence = next_sequence.max(scan.end).max(segment.first);
        if !scan.damage.is_empty() {
            // Kept aside for inspection (a hard link: the bytes stay after truncation deletes the segment).
            recovery.quarantined.push(quarantine(dir, &segment)?);
            recovery.damage.extend(scan.damage);
            // Whatever the damaged bytes held may have reached the destination: number above it for sure.
            next_sequence = next_sequence.max(clock_base());
        }
        let end = scan.end;
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

/// Links a damaged segment into `<dir>/damaged/` (replacing an earlier copy of it) and returns where.
fn quarantine(dir: &Path, segment: &Segment) -> Result<PathBuf> {
    let aside = dir.join(DAMAGED_DIR);
    std::fs::create_dir_all(&aside).map_err(WalError::io(&aside, "creating the directory"))?;
    let Some(name) = segment.path.file_name() else {
        return Ok(segment.path.clone());
    };
    let target = aside.join(name);
    match std::fs::remove_file(&target) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(WalError::io(
                &target,
                "replacing a damaged segment kept aside",
            )(e));
        }
        _ => {}
    }
    std::fs::hard_link(&segment.path, &target)
        .map_err(WalError::io(&target, "keeping a damaged segment aside"))?;
    Ok(target)
}
