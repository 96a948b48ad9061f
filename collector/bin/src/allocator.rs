//! The daemon's memory allocator, and the two things it does so that a sidecar's resident memory follows what it
//! holds rather than what it once held.
//!
//! - mimalloc is the global allocator (feature `mimalloc`, on by default): OTLP decoding allocates a String or
//!   Vec per attribute, and mimalloc's thread-local free lists make that about 40% cheaper than glibc malloc
//!   (receivers/otlp/README.md). Without the feature the system allocator is used, which heap profilers such as
//!   heaptrack can follow.
//! - No transparent huge pages ([`disable_transparent_huge_pages`], and mimalloc built with `no_thp`): mimalloc
//!   asks for huge pages on its arenas, and each thread's first touch of an arena region then makes a whole
//!   2 MiB page resident. Measured on the default config (release build, 2026-11-22): idle RSS 58 MB with huge
//!   pages, 30 MB without; the burst of tests/e2e/burst.rs peaked 65 MiB higher. A sidecar's heap is small, so
//!   the TLB misses huge pages save do not pay for that.
//! - Freed memory goes back to the system after a burst ([`give_back_freed_memory`]): mimalloc returns free
//!   pages lazily, 1 s after they were freed, but only when a later allocation or free gets to it. An idle
//!   daemon makes none, so after a burst it kept ~130 MB resident until the next request. A quiet-time nudge
//!   (freeing one large, never-touched block, which runs mimalloc's purge) releases it.
//!
//! Lifecycle: the global allocator is in place before `main`; `otlake run` disables huge pages before starting
//! its runtime and spawns the nudging task on it, which ends with the runtime.

use std::time::Duration;

use otlake_core::MemoryBudget;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often the nudging task looks at the memory budget.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// Nudges after the budget was last seen in use: the first may come before mimalloc's 1 s purge delay is over
/// for the last freed pages, the later ones after.
const NUDGES_AFTER_USE: u32 = 3;
/// The nudge's block: above mimalloc's largest size class (512 KiB), so it gets a page of its own that is freed
/// (and the purge run) at once. It is never written, so it costs address space only.
const NUDGE_BYTES: usize = 1 << 20;

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`), for hosts whose THP mode is
/// `always` (with `madvise`, the `no_thp` build of mimalloc already asks for none). Best effort: a kernel that
/// refuses leaves the daemon as it was.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::debug!(error = %e, "Cannot disable transparent huge pages.");
    }
}

/// Runs forever: when the memory budget has been unused for a moment after being in use, has the allocator
/// return the memory it freed. Costs one timer wake-up every [`CHECK_EVERY`] when idle.
pub async fn give_back_freed_memory() {
    let budget = MemoryBudget::global();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Idle since start: nothing to give back until the budget has been used.
    let mut quiet_ticks = NUDGES_AFTER_USE;
    loop {
        tick.tick().await;
        if budget.used() > 0 {
            quiet_ticks = 0;
            continue;
        }
        if quiet_ticks < NUDGES_AFTER_USE {
            quiet_ticks += 1;
            nudge();
        }
    }
}

/// Allocates and frees one large block: mimalloc frees its page at once and, on the way, purges (returns to the
/// system) the free pages whose delay has passed.
fn nudge() {
    let block: Vec<u8> = std::hint::black_box(Vec::with_capacity(NUDGE_BYTES));
    drop(block);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_anon() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
            .map(|kb| kb * 1024)
            .expect("RssAnon")
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn huge_pages_are_off_for_the_process() {
        disable_transparent_huge_pages();
        assert!(rustix::thread::transparent_huge_pages_are_disabled().expect("prctl"));
    }

    /// What a burst leaves: many medium blocks, written, then freed. Without the nudge an idle process keeps
    /// them resident; with it they go back once mimalloc's purge delay (1 s) has passed.
    #[cfg(feature = "mimalloc")]
    #[test]
    fn freed_memory_goes_back_after_a_nudge() {
        const BLOCKS: usize = 1024;
        const BLOCK: usize = 64 << 10; // 64 MiB in all
        disable_transparent_huge_pages();
        let baseline = rss_anon();
        let blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![(i as u8) | 1; BLOCK]).collect();
        let held = rss_anon();
        assert!(
            held >= baseline + BLOCKS * BLOCK / 2,
            "the blocks were not resident"
        );
        drop(blocks);
        // Past mimalloc's purge delay for everything freed above.
        std::thread::sleep(Duration::from_millis(1500));
        nudge();
        let after = rss_anon();
        assert!(
            after < baseline + BLOCKS * BLOCK / 4,
            "{} MiB of 64 MiB freed still resident after the nudge (baseline {} MiB)",
            (after.saturating_sub(baseline)) >> 20,
            baseline >> 20
        );
    }
}
