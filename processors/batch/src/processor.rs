//! The `batch` processor: groups requests per signal (and per tenant, with `metadata_keys`) and sends them
//! when `send_batch_size` items or `send_batch_max_bytes` bytes are pending, or `timeout` after the first one
//! arrived, or (with `send_when_idle`) when the pipeline's input runs dry, splitting anything above
//! `send_batch_max_size` / the byte cap.
//!
//! Lifecycle: built per pipeline, driven by the pipeline task (`process`, `on_tick` at `next_deadline`,
//! `flush` when the input closes). Dropped with data pending (a crash path), the pending requests' unresolved
//! acknowledgements make their clients retry.
//!
//! Guarantees: unlike the Collector's batch processor, this one never answers a client itself. Every sent
//! batch carries the acknowledgements of the requests it holds, so the exporter's verdict (success, retry,
//! rejection, partial rejection counted upstream) reaches every merged client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otlake_core::{Batch, ComponentId, Processor, RequestMeta, Signal};
use tokio::time::Instant;

use crate::config::BatchConfig;
use crate::pending::{Drained, Limits, Pending};

/// The values of the configured `metadata_keys` of a request, in configuration order.
type MetaKey = Vec<Option<String>>;

struct Group {
    pending: Pending,
    /// The metadata sent batches of this group carry: only the `metadata_keys` values, which all of its
    /// requests share (other headers may differ between the merged requests).
    meta: Arc<RequestMeta>,
}

pub struct BatchProcessor {
    id: ComponentId,
    signal: Signal,
    limits: Limits,
    timeout: Duration,
    send_when_idle: bool,
    /// Lower-case, as the receiver stores header names.
    metadata_keys: Vec<String>,
    cardinality_limit: usize,
    groups: HashMap<MetaKey, Group>,
    warned_cardinality: bool,
}

impl BatchProcessor {
    pub fn new(id: ComponentId, config: &BatchConfig, signal: Signal) -> Self {
        BatchProcessor {
            id,
            signal,
            limits: Limits {
                send_batch_size: config.send_batch_size.max(1),
                max_items: config.max_items(),
                max_bytes: config.max_bytes(),
            },
            timeout: config.timeout,
            send_when_idle: config.send_when_idle,
            metadata_keys: config
                .metadata_keys
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            cardinality_limit: config.metadata_cardinality_limit,
            groups: HashMap::new(),
            warned_cardinality: false,
        }
    }

    fn key_of(&self, meta: &RequestMeta) -> MetaKey {
        self.metadata_keys
            .iter()
            .map(|k| meta.metadata.get(k).cloned())
            .collect()
    }

    fn meta_of(&self, key: &MetaKey) -> Arc<RequestMeta> {
        let metadata = self
            .metadata_keys
            .iter()
            .zip(key)
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        Arc::new(RequestMeta::from_metadata(metadata))
    }

    fn emit(drained: Vec<Drained>, meta: &Arc<RequestMeta>, out: &mut Vec<Batch>) {
        out.extend(drained.into_iter().map(|d| Batch {
            payload: Arc::new(d.payload),
            acks: d.acks,
            meta: Arc::clone(meta),
        }));
    }
}

impl Processor for BatchProcessor {
    fn metadata_keys(&self) -> &[String] {
        &self.metadata_keys
    }

    fn process(&mut self, batch: Batch, out: &mut Vec<Batch>) {
        if batch.signal() != self.signal {
            // A wiring bug: pass it on untouched rather than lose it or mix signals.
            tracing::warn!(processor = %self.id, expected = %self.signal, got = %batch.signal(),
                "Batch of another signal passed through unbatched.");
            out.push(batch);
            return;
        }
        if batch.meta.source().is_some() {
            // A batch numbered by a replayable source (a file receiver's journal) is committed downstream under
            // its number and skipped when replayed: merged with or split from other data, it could be neither.
            // Its source already batches.
            out.push(batch);
            return;
        }
        let key = self.key_of(&batch.meta);
        let items = batch.item_count();
        let bytes = if self.limits.counts_bytes() {
            batch.payload.encoded_len()
        } else {
            0
        };
        let now = Instant::now();
        let mut drained = Vec::new();

        if !self.groups.contains_key(&key) && self.groups.len() >= self.cardinality_limit {
            // Over the tenant limit: send this request alone (still split by the caps), keeping tenants apart
            // and nothing refused; the Collector refuses such data instead.
            if !self.warned_cardinality {
                self.warned_cardinality = true;
                tracing::warn!(processor = %self.id, limit = self.cardinality_limit,
                    "More metadata combinations pending than metadata_cardinality_limit; sending the excess unbatched.");
            }
            let meta = self.meta_of(&key);
            let mut alone = Pending::new(now);
            let (payload, acks, _) = batch.into_parts();
            if let Err((payload, acks)) = alone.add(payload, acks, items, bytes) {
                out.push(Batch {
                    payload: Arc::new(payload),
                    acks,
                    meta,
                });
                return;
            }
            alone.drain_all(&self.limits, &mut drained);
            Self::emit(drained, &meta, out);
            return;
        }

        let meta = match self.groups.get(&key) {
            Some(group) => Arc::clone(&group.meta),
            None => self.meta_of(&key),
        };
        let timeout = self.timeout;
        let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
            pending: Pending::new(now + timeout),
            meta: Arc::clone(&meta),
        });
        let (payload, acks, original_meta) = batch.into_parts();
        if let Err((payload, acks)) = group.pending.add(payload, acks, items, bytes) {
            out.push(Batch {
                payload: Arc::new(payload),
                acks,
                meta: original_meta,
            });
            return;
        }
        if timeout.is_zero() || group.pending.is_full(&self.limits) {
            if timeout.is_zero() {
                let all = std::mem::replace(&mut group.pending, Pending::new(now));
                all.drain_all(&self.limits, &mut drained);
            } else {
                group.pending.drain_full(&self.limits, &mut drained);
            }
            if group.pending.is_empty() {
                self.groups.remove(&key);
            }
        }
        Self::emit(drained, &meta, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.pending.deadline).min()
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Batch>) {
        let due: Vec<Group> = self
            .groups
            .extract_if(|_, group| group.pending.deadline <= now)
            .map(|(_, group)| group)
            .collect();
        for group in due {
            let mut drained = Vec::new();
            group.pending.drain_all(&self.limits, &mut drained);
            Self::emit(drained, &group.meta, out);
        }
    }

    fn wants_idle(&self) -> bool {
        self.send_when_idle
    }

    fn on_idle(&mut self, out: &mut Vec<Batch>) {
        if self.send_when_idle {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut Vec<Batch>) {
        for (_, group) in self.groups.drain() {
            let mut drained = Vec::new();
            group.pending.drain_all(&self.limits, &mut drained);
            Self::emit(drained, &group.meta, out);
        }
    }
}
