//! Unit tests of the log on a real directory: append/replay/truncate, torn and corrupt tails, rollover, full.

use std::io::Write;

use super::*;

fn options(dir: &Path) -> WalOptions {
    WalOptions {
        dir: dir.to_path_buf(),
        max_bytes: 1 << 20,
        segment_bytes: 64 << 10,
        fsync: true,
    }
}

fn group(bodies: &[&[u8]]) -> Group {
    let mut group = Group::new();
    for body in bodies {
        group.push(|buf| buf.extend_from_slice(body));
    }
    group
}

fn bodies(wal: &Wal, recovery: &Recovery) -> Vec<Vec<u8>> {
    let mut reader = wal.reader();
    recovery
        .entries
        .iter()
        .map(|e| reader.read(e.sequence, e.location).expect("readable"))
        .collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// Changes the bytes of the newest segment in `dir` on disk with `change`; returns its path and its bytes as
/// damaged.
fn damage_newest_segment(dir: &Path, change: impl FnOnce(&mut [u8])) -> (PathBuf, Vec<u8>) {
    let path = segment_files(dir).pop().expect("a segment");
    let mut bytes = std::fs::read(&path).expect("read");
    change(&mut bytes);
    std::fs::write(&path, &bytes).expect("write");
    (path, bytes)
}

fn flip_last_bit(bytes: &mut [u8]) {
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
}

#[test]
fn appended_records_are_replayed_in_order_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, recovery) = Wal::open(options(dir.path())).expect("open");
    assert!(recovery.entries.is_empty() && recovery.damage.is_empty());
    let first = wal.next_sequence();
    let written = wal.commit(group(&[b"one", b"two"])).expect("commit");
    let more = wal.commit(group(&[b"three"])).expect("commit");
    assert_eq!(
        written
            .iter()
            .chain(&more)
            .map(|e| e.sequence)
            .collect::<Vec<_>>(),
        [first, first + 1, first + 2]
    );
    drop(wal);

    let (wal, recovery) = Wal::open(options(dir.path())).expect("reopen");
    assert!(recovery.damage.is_empty());
    assert_eq!(
        bodies(&wal, &recovery),
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert_eq!(recovery.entries[0].sequence, first);
    assert_eq!(wal.next_sequence(), first + 3, "numbering continues");
}

#[test]
fn a_new_log_numbers_from_the_clock_and_never_goes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(options(dir.path())).expect("open");
    let first = wal.next_sequence();
    assert!(
        first > 1_700_000_000_000_000,
        "microseconds since the epoch: {first}"
    );
    let written = wal.commit(group(&[b"a"])).expect("commit");
    wal.truncate(written[0].sequence + 1).expect("truncate");
    drop(wal);
    // Everything delivered: a reopened log replays nothing and keeps counting upwards.
    let (wal, recovery) = Wal::open(options(dir.path())).expect("reopen");
    assert!(recovery.entries.is_empty());
    assert_eq!(wal.next_sequence(), first + 1);
    drop(wal);
    // Even a deleted log starts above the old numbers.
    std::fs::remove_dir_all(dir.path()).expect("rm");
    let (wal, _) = Wal::open(options(dir.path())).expect("new");
    assert!(wal.next_sequence() > first);
}

#[test]
fn truncation_skips_delivered_records_and_deletes_whole_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.segment_bytes = 4096;
    let (mut wal, _) = Wal::open(opts.clone()).expect("open");
    let body = vec![7u8; 1000];
    let mut sequences = Vec::new();
    for _ in 0..20 {
        sequences.extend(
            wal.commit(group(&[&body]))
                .expect("commit")
                .iter()
                .map(|e| e.sequence),
        );
    }
    let segments = segment_files(dir.path()).len();
    assert!(segments >= 4, "rolled over into {segments} segments");
    let used = wal.used_bytes();
    // The first 12 are delivered.
    let removed = wal.truncate(sequences[12]).expect("truncate");
    assert!(removed >= 2, "{removed} segments deleted");
    assert!(wal.used_bytes() < used);
    assert_eq!(segment_files(dir.path()).len(), segments - removed);
    drop(wal);

    let (_wal, recovery) = Wal::open(opts).expect("reopen");
    let replayed: Vec<u64> = recovery.entries.iter().map(|e| e.sequence).collect();
    assert_eq!(
        replayed,
        sequences[12..],
        "exactly the undelivered ones, in order"
    );
}

#[test]
fn a_torn_tail_is_reported_and_the_intact_prefix_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(options(dir.path())).expect("open");
    wal.commit(group(&[b"kept-1", b"kept-2"])).expect("commit");
    wal.commit(group(&[b"this record will be torn"]))
        .expect("commit");
    drop(wal);
    // Power loss in the middle of the last record: its last bytes never reached the disk.
    let path = segment_files(dir.path()).pop().expect("a segment");
    let len = std::fs::metadata(&path).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open")
        .set_len(len - 5)
        .expect("cut");

    let (mut wal, recovery) = Wal::open(options(dir.path())).expect("reopen");
    assert_eq!(
        bodies(&wal, &recovery),
        [b"kept-1".to_vec(), b"kept-2".to_vec()]
    );
    assert_eq!(recovery.damage.len(), 1);
    assert!(
        recovery.damage[0].reason.contains("torn"),
        "{:?}",
        recovery.damage
    );
    assert_eq!(recovery.damage[0].segment, path);
    // New records go to a fresh segment, never after the damaged bytes, and replay after the kept ones. The
    // torn record's sequence may already be at the destination (fsync off): it is never issued again.
    let torn = recovery.entries[1].sequence + 1;
    let next = wal.commit(group(&[b"after"])).expect("commit");
    assert!(
        next[0].sequence > torn,
        "{} reuses {torn}",
        next[0].sequence
    );
    drop(wal);
    let (wal, recovery) = Wal::open(options(dir.path())).expect("again");
    assert_eq!(
        bodies(&wal, &recovery),
        [b"kept-1".to_vec(), b"kept-2".to_vec(), b"after".to_vec()]
    );
}

#[test]
fn a_flipped_bit_skips_only_its_record_and_the_intact_records_after_it_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(options(dir.path())).expect("open");
    let written = wal
        .commit(group(&[b"first", b"second", b"third"]))
        .expect("commit");
    drop(wal);
    // A bit in the body of the second record.
    let at = written[1].location.offset as usize + HEADER_LEN + 2;
    damage_newest_segment(dir.path(), |bytes| bytes[at] ^= 0x10);

    let (mut wal, recovery) = Wal::open(options(dir.path())).expect("reopen");
    assert_eq!(
        bodies(&wal, &recovery),
        [b"first".to_vec(), b"third".to_vec()]
    );
    assert_eq!(recovery.damage.len(), 1, "{:?}", recovery.damage);
    assert_eq!(recovery.damage[0].reason, "checksum mismatch");
    assert_eq!(recovery.damage[0].offset, written[1].location.offset);
    assert_eq!(
        recovery.damage[0].bytes_skipped,
        written[2].location.offset - written[1].location.offset
    );
    let next = wal.commit(group(&[b"fourth"])).expect("commit");
    assert!(next[0].sequence > written[2].sequence);
}

#[test]
fn a_segment_whose_first_record_is_damaged_keeps_the_rest_and_is_kept_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(options(dir.path())).expect("open");
    let written = wal
        .commit(group(&[b"first", b"second", b"third"]))
        .expect("commit");
    drop(wal);
    // The first record's length field: its framing is gone.
    let at = written[0].location.offset as usize;
    let (path, bytes) = damage_newest_segment(dir.path(), |bytes| {
        bytes[at..at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes())
    });

    let (mut wal, recovery) = Wal::open(options(dir.path())).expect("reopen");
    assert_eq!(
        bodies(&wal, &recovery),
        [b"second".to_vec(), b"third".to_vec()],
        "the intact records after the damage are replayed"
    );
    assert_eq!(
        recovery.quarantined,
        [dir.path()
            .join(DAMAGED_DIR)
            .join(path.file_name().expect("name"))]
    );
    assert_eq!(
        std::fs::read(&recovery.quarantined[0]).expect("kept aside"),
        bytes,
        "the damaged bytes as found"
    );
    let next = wal.commit(group(&[b"fourth"])).expect("commit");
    assert!(next[0].sequence > written[2].sequence);
}

#[test]
fn a_segment_with_nothing_intact_is_moved_aside_and_its_sequences_are_never_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = options(dir.path());
    opts.fsync = false;
    let (mut wal, _) = Wal::open(opts.clone()).expect("open");
    let written = wal.commit(group(&[b"only record"])).expect("commit");
    drop(wal);
    let (path, bytes) = damage_newest_segment(dir.path(), flip_last_bit);

    let (mut wal, recovery) = Wal::open(opts).expect("reopen");
    assert!(recovery.entries.is_empty());
    assert_eq!(recovery.damage.len(), 1);
    assert!(!path.exists(), "no longer a segment of the log");
    assert_eq!(
        std::fs::read(&recovery.quarantined[0]).expect("moved aside"),
        bytes
    );
    // The lost record may have reached the destination already: its number is not given out again.
    let next = wal.commit(group(&[b"new"])).expect("commit");
    assert!(
        next[0].sequence > written[0].sequence,
        "{} reuses {}",
        next[0].sequence,
        written[0].sequence
    );
}

#[test]
fn zeroed_or_foreign_bytes_are_damage_not_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(options(dir.path())).expect("open");
    wal.commit(group(&[b"only"])).expect("commit");
    drop(wal);
    let path = segment_files(dir.path()).pop().expect("a segment");
    // A file system that extended the file with zeros before the data landed.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open")
        .write_all(&[0u8; 64])
        .expect("zeros");
    std::fs::write(
        dir.path().join(format!("{:020}.wal", 1u64)),
        b"garbage!garbage!",
    )
    .expect("foreign");
    let (wal, recovery) = Wal::open(options(dir.path())).expect("reopen");
    assert_eq!(bodies(&wal, &recovery), [b"only".to_vec()]);
    assert_eq!(recovery.damage.len(), 2, "{:?}", recovery.damage);
}

#[test]
fn a_full_log_refuses_appends_until_truncation_frees_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions {
        dir: dir.path().to_path_buf(),
        max_bytes: 16 << 10,
        segment_bytes: 4 << 10,
        fsync: false,
    };
    let (mut wal, _) = Wal::open(opts).expect("open");
    let body = vec![1u8; 1000];
    let mut sequences = Vec::new();
    let full = loop {
        match wal.commit(group(&[&body])) {
            Ok(e) => sequences.push(e[0].sequence),
            Err(e) => break e,
        }
        assert!(sequences.len() < 100, "never full");
    };
    assert!(matches!(full, WalError::Full { .. }), "{full}");
    assert!(full.is_retryable());
    assert!(wal.used_bytes() <= 16 << 10);
    // Nothing was written by the refused append.
    let used = wal.used_bytes();
    assert!(wal.commit(group(&[&body])).is_err());
    assert_eq!(wal.used_bytes(), used);
    // Delivering the oldest frees whole segments, and appends work again.
    wal.truncate(*sequences.last().expect("some") + 1)
        .expect("truncate");
    wal.commit(group(&[&body])).expect("room again");
}

#[test]
fn a_record_whose_bytes_changed_on_disk_is_refused_by_the_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut wal, _) = Wal::open(options(dir.path())).expect("open");
    let written = wal.commit(group(&[b"payload"])).expect("commit");
    damage_newest_segment(dir.path(), flip_last_bit);
    let err = wal
        .reader()
        .read(written[0].sequence, written[0].location)
        .expect_err("corrupt");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn a_second_process_cannot_open_the_same_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_wal, _) = Wal::open(options(dir.path())).expect("open");
    let err = Wal::open(options(dir.path())).expect_err("locked");
    assert!(matches!(err, WalError::Locked { .. }), "{err}");
}

#[test]
fn a_record_larger_than_the_whole_log_is_refused_for_good_not_full() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions {
        max_bytes: 16 << 10,
        ..options(dir.path())
    };
    let (mut wal, _) = Wal::open(opts).expect("open");
    let err = wal
        .commit(group(&[&vec![0u8; 16 << 10]]))
        .expect_err("cannot fit");
    assert!(matches!(err, WalError::TooLarge { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("max_bytes of 16384"), "{err}");
    // The largest record that fits an empty log is taken.
    let fits = wal.record_capacity() as usize - HEADER_LEN;
    wal.commit(group(&[&vec![0u8; fits]])).expect("fits");
}
