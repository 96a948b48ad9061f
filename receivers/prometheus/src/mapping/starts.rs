//! Start times of cumulative series, kept per target across its scrapes: a `_created` value where the target
//! gives one; else the time the series was first seen (that point's own time); a value that goes down (a
//! counter, or a histogram's or summary's count) is a restart, whose new start is the previous observation's
//! time. A series absent from a scrape is forgotten and starts afresh if it returns, so the map holds only the
//! series of the last scrape.

use std::collections::HashMap;

/// The start time of each series of one target, across its scrapes.
#[derive(Debug, Default)]
pub struct SeriesStarts {
    series: HashMap<String, Start>,
    generation: u64,
}

#[derive(Debug)]
struct Start {
    start_ns: u64,
    /// The counter value, or the histogram's / summary's count, last seen.
    last_value: f64,
    last_time_ns: u64,
    generation: u64,
}

impl SeriesStarts {
    /// The start time of the point `value` of series `key` at `time_ns`; `created_ns` when the target gave one.
    pub(super) fn start(
        &mut self,
        key: &str,
        value: f64,
        time_ns: u64,
        created_ns: Option<u64>,
    ) -> u64 {
        let generation = self.generation;
        let start_ns = match (self.series.get(key), created_ns) {
            (_, Some(created)) => created,
            (Some(known), None) if value < known.last_value => known.last_time_ns,
            (Some(known), None) => known.start_ns,
            (None, None) => time_ns,
        };
        match self.series.get_mut(key) {
            Some(entry) => {
                *entry = Start {
                    start_ns,
                    last_value: value,
                    last_time_ns: time_ns,
                    generation,
                };
            }
            None => {
                self.series.insert(
                    key.to_owned(),
                    Start {
                        start_ns,
                        last_value: value,
                        last_time_ns: time_ns,
                        generation,
                    },
                );
            }
        }
        start_ns
    }

    /// Forgets the series the scrape just mapped did not contain.
    pub(super) fn finish_scrape(&mut self) {
        let generation = self.generation;
        self.series.retain(|_, s| s.generation == generation);
        self.generation += 1;
    }

    /// How many series are remembered.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}
