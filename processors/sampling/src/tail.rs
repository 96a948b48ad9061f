//! Tail sampling: spans are held per trace for `decision_wait` after the trace's first span, then the whole
//! trace is kept or dropped with the same rules and ratio as head sampling, seeing all of its spans.
//!
//! Lifecycle: spans enter through [`TailSampler::ingest`]; [`TailSampler::on_tick`] decides the traces whose
//! wait is over; [`TailSampler::flush`] decides everything held (shutdown). Bounds: when more than
//! `max_traces` traces or `max_bytes` encoded span bytes are held, the oldest traces are decided early, never
//! dropped unseen. Spans arriving after their trace was decided follow the remembered decision at once (a
//! bounded cache of `max_traces` decisions), or, if they match a rule by themselves, that rule.
//!
//! Acknowledgements: each trace holds a clone of the acknowledgements of every request that brought it spans;
//! a kept trace's clones travel with its spans, a dropped trace's resolve `Delivered`. A client therefore hears
//! back only once every trace of its request is decided and the kept ones are durable: tail mode adds up to
//! `decision_wait` to every client's export latency.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use otlake_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlake_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlake_core::{AckSet, Batch, ExportRequest, Outcome, Payload, RequestMeta};
use prost::Message;
use tokio::time::Instant;

use crate::decide::{Settings, keep_span};
use crate::head::{TraceId, trace_key};
use crate::rules::{Rules, TraceEvidence};
use crate::threshold::{Randomness, Threshold};

/// The resource and scope (without their spans) and the request metadata a held span came with.
struct Shell {
    resource: ResourceSpans,
    scope: ScopeSpans,
    meta: Arc<RequestMeta>,
}

struct HeldTrace {
    deadline: Instant,
    spans: Vec<HeldSpan>,
    acks: AckSet,
    bytes: usize,
    evidence: TraceEvidence,
    /// The last ingested request that added its acknowledgements (one clone per request and trace).
    last_request: u64,
}

/// Remembered decisions, for spans that arrive late; first in, first out.
struct DecisionCache {
    thresholds: HashMap<TraceId, Threshold>,
    order: VecDeque<TraceId>,
    capacity: usize,
}

impl DecisionCache {
    fn insert(&mut self, id: TraceId, threshold: Threshold) {
        if self.thresholds.insert(id, threshold).is_none() {
            self.order.push_back(id);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.thresholds.remove(&old);
                }
            }
        }
    }
}

/// A held span with the resource, scope and metadata it came with.
type HeldSpan = (Arc<Shell>, Span);

/// One outgoing batch: kept spans of one request metadata, one resource group per shell.
struct OutGroup {
    meta: Arc<RequestMeta>,
    request: ExportTraceServiceRequest,
    acks: AckSet,
    /// `Arc::as_ptr` of a shell → index of its resource group in `request`.
    shells: HashMap<usize, usize>,
}

/// Kept spans on their way out, grouped by request metadata (so a later stage can still tell tenants apart).
#[derive(Default)]
struct Outgoing {
    groups: Vec<OutGroup>,
}

impl Outgoing {
    /// Adds the kept spans of one trace (or one request's immediate spans) with their acknowledgements, which
    /// go with every group that receives some of the spans. `spans` is never empty (callers only add kept
    /// spans); were it empty, nothing would have been handed over and the acknowledgements resolve as such.
    fn add(&mut self, spans: Vec<HeldSpan>, acks: AckSet) {
        let mut used: Vec<usize> = Vec::new();
        // Consecutive spans nearly always share their shell: look it up once per run.
        let mut last: Option<(usize, usize, usize)> = None; // (shell key, group, resource index)
        for (shell, span) in spans {
            let key = Arc::as_ptr(&shell) as usize;
            let (group, index) = match last {
                Some((k, g, i)) if k == key => (g, i),
                _ => {
                    let g = self.group_of(&shell.meta);
                    let out = &mut self.groups[g];
                    let next = out.request.resource_spans.len();
                    let i = *out.shells.entry(key).or_insert(next);
                    if i == next {
                        let mut resource = shell.resource.clone();
                        let mut scope = shell.scope.clone();
                        scope.spans = Vec::new();
                        resource.scope_spans = vec![scope];
                        out.request.resource_spans.push(resource);
                    }
                    if !used.contains(&g) {
                        used.push(g);
                    }
                    last = Some((key, g, i));
                    (g, i)
                }
            };
            self.groups[group].request.resource_spans[index].scope_spans[0]
                .spans
                .push(span);
        }
        let Some((&last_group, others)) = used.split_last() else {
            acks.resolve(Outcome::Delivered);
            return;
        };
        for &g in others {
            self.groups[g].acks.merge(acks.clone());
        }
        self.groups[last_group].acks.merge(acks);
    }

    fn group_of(&mut self, meta: &Arc<RequestMeta>) -> usize {
        match self
            .groups
            .iter()
            .position(|g| Arc::ptr_eq(&g.meta, meta) || *g.meta == **meta)
        {
            Some(i) => i,
            None => {
                self.groups.push(OutGroup {
                    meta: Arc::clone(meta),
                    request: ExportTraceServiceRequest::default(),
                    acks: AckSet::new(),
                    shells: HashMap::new(),
                });
                self.groups.len() - 1
            }
        }
    }

    fn emit(self, out: &mut Vec<Batch>) {
        for group in self.groups {
            out.push(Batch {
                payload: Arc::new(Payload::from(group.request)),
                acks: group.acks,
                meta: group.meta,
            });
        }
    }
}

pub struct TailSampler {
    wait: Duration,
    max_traces: usize,
    max_bytes: usize,
    held: HashMap<TraceId, HeldTrace>,
    /// Traces in arrival order with their deadlines; an entry whose deadline no longer matches the held
    /// trace's is stale (the trace was decided early) and skipped.
    order: VecDeque<(Instant, TraceId)>,
    held_bytes: usize,
    decided: DecisionCache,
    requests: u64,
}

impl TailSampler {
    pub fn new(wait: Duration, max_traces: usize, max_bytes: usize) -> Self {
        TailSampler {
            wait,
            max_traces: max_traces.max(1),
            max_bytes,
            held: HashMap::new(),
            order: VecDeque::new(),
            held_bytes: 0,
            decided: DecisionCache {
                thresholds: HashMap::new(),
                order: VecDeque::new(),
                capacity: max_traces.max(1),
            },
            requests: 0,
        }
    }

    /// Takes one request's spans. Returns the number of spans dropped at once (late spans of dropped traces,
    /// spans without randomness).
    pub fn ingest(
        &mut self,
        batch: Batch,
        now: Instant,
        rules: &Rules,
        settings: Settings,
        out: &mut Vec<Batch>,
    ) -> u64 {
        self.requests += 1;
        let request_no = self.requests;
        let (payload, acks, meta) = batch.into_parts();
        let request = match payload.into_request() {
            Ok(ExportRequest::Traces(request)) => request,
            Ok(other) => {
                out.push(Batch {
                    payload: Arc::new(Payload::from(other)),
                    acks,
                    meta,
                });
                return 0;
            }
            Err(e) => {
                acks.resolve(Outcome::rejected(e.to_string()));
                return 0;
            }
        };
        let mut immediate = Vec::new();
        let mut dropped = 0u64;
        for mut rs in request.resource_spans {
            let scopes = std::mem::take(&mut rs.scope_spans);
            for mut ss in scopes {
                let spans = std::mem::take(&mut ss.spans);
                let shell = Arc::new(Shell {
                    resource: rs.clone(),
                    scope: ss,
                    meta: Arc::clone(&meta),
                });
                let resource = shell
                    .resource
                    .resource
                    .as_ref()
                    .map_or(&[][..], |r| &r.attributes);
                // Spans of one trace usually come together: one lookup per run of the same trace id.
                let mut spans = spans.into_iter().peekable();
                while let Some(first) = spans.next() {
                    let id = trace_key(&first.trace_id);
                    let has_randomness = Randomness::of_trace_id(&first.trace_id).is_some();
                    let late = if has_randomness {
                        self.decided.thresholds.get(&id).copied()
                    } else {
                        None
                    };
                    let run = std::iter::once(first).chain(std::iter::from_fn(|| {
                        spans.next_if(|s| has_randomness && s.trace_id.as_slice() == id.as_slice())
                    }));
                    if !has_randomness || late.is_some() {
                        // Decided now, span by span: no trace to wait for, or its decision was made already.
                        for mut span in run {
                            let mut own = TraceEvidence::default();
                            rules.observe(&mut own, &span, resource);
                            let threshold = late.map_or(rules.decide(&own), |t| {
                                t.min(rules.decide_rules_only(&own))
                            });
                            if keep_span(&mut span, threshold, settings) {
                                immediate.push((Arc::clone(&shell), span));
                            } else {
                                dropped += 1;
                            }
                        }
                        continue;
                    }
                    let wait = self.wait;
                    let order = &mut self.order;
                    let trace = self.held.entry(id).or_insert_with(|| {
                        let deadline = now + wait;
                        order.push_back((deadline, id));
                        HeldTrace {
                            deadline,
                            spans: Vec::new(),
                            acks: AckSet::new(),
                            bytes: 0,
                            evidence: TraceEvidence::default(),
                            last_request: 0,
                        }
                    });
                    if trace.last_request != request_no {
                        trace.last_request = request_no;
                        trace.acks.merge(acks.clone());
                    }
                    for span in run {
                        let bytes = span.encoded_len();
                        rules.observe(&mut trace.evidence, &span, resource);
                        trace.bytes += bytes;
                        self.held_bytes += bytes;
                        trace.spans.push((Arc::clone(&shell), span));
                    }
                }
            }
        }
        let mut outgoing = Outgoing::default();
        if !immediate.is_empty() {
            outgoing.add(immediate, acks.clone());
        }
        // This request's data is now held by the clones above; its own holder has nothing left to vouch for.
        acks.resolve(Outcome::Delivered);
        while self.held.len() > self.max_traces || self.held_bytes > self.max_bytes {
            match self.decide_oldest(None, rules, settings, &mut outgoing) {
                Some(n) => dropped += n,
                None => break,
            }
        }
        outgoing.emit(out);
        dropped
    }

    /// The earliest pending decision.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.order.front().map(|(deadline, _)| *deadline)
    }

    /// Decides the traces whose wait is over. Returns the number of spans dropped.
    pub fn on_tick(
        &mut self,
        now: Instant,
        rules: &Rules,
        settings: Settings,
        out: &mut Vec<Batch>,
    ) -> u64 {
        let mut outgoing = Outgoing::default();
        let mut dropped = 0;
        while let Some(n) = self.decide_oldest(Some(now), rules, settings, &mut outgoing) {
            dropped += n;
        }
        outgoing.emit(out);
        dropped
    }

    /// Decides every held trace. Returns the number of spans dropped.
    pub fn flush(&mut self, rules: &Rules, settings: Settings, out: &mut Vec<Batch>) -> u64 {
        let mut outgoing = Outgoing::default();
        let mut dropped = 0;
        while let Some(n) = self.decide_oldest(None, rules, settings, &mut outgoing) {
            dropped += n;
        }
        outgoing.emit(out);
        dropped
    }

    /// Decides the oldest held trace if its deadline is at or before `due` (any, when `None`). Returns the
    /// number of its spans dropped, or `None` when there is nothing (due) to decide.
    fn decide_oldest(
        &mut self,
        due: Option<Instant>,
        rules: &Rules,
        settings: Settings,
        outgoing: &mut Outgoing,
    ) -> Option<u64> {
        loop {
            let &(deadline, id) = self.order.front()?;
            if due.is_some_and(|now| deadline > now) {
                return None;
            }
            self.order.pop_front();
            if self.held.get(&id).is_none_or(|t| t.deadline != deadline) {
                continue; // stale entry
            }
            let trace = self.held.remove(&id)?;
            self.held_bytes -= trace.bytes;
            return Some(self.decide(id, trace, rules, settings, outgoing));
        }
    }

    fn decide(
        &mut self,
        id: TraceId,
        trace: HeldTrace,
        rules: &Rules,
        settings: Settings,
        outgoing: &mut Outgoing,
    ) -> u64 {
        let threshold = rules.decide(&trace.evidence);
        self.decided.insert(id, threshold);
        let total = trace.spans.len() as u64;
        let kept: Vec<HeldSpan> = trace
            .spans
            .into_iter()
            .filter_map(|(shell, mut span)| {
                keep_span(&mut span, threshold, settings).then_some((shell, span))
            })
            .collect();
        let dropped = total - kept.len() as u64;
        if kept.is_empty() {
            // Sampled out on purpose: accepted and discarded.
            trace.acks.resolve(Outcome::Delivered);
        } else {
            outgoing.add(kept, trace.acks);
        }
        dropped
    }
}
