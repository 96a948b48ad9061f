//! The sending queue: where requests wait between the exporter's input and its `num_consumers` senders.
//!
//! The boundary is the [`SendingQueue`] trait plus [`Lease::settle`]. A write-ahead log is not one of these
//! queues: `sending_queue: {storage: wal}` puts the service's log stage (`otlake_wal`) in front of the exporter,
//! which then holds only what the log hands it (`in_flight_bytes`) in this in-memory queue:
//! - `push` takes a request and waits while the queue is full. The exporter's input loop is what awaits it, so a
//!   full queue stops the input from being read and the bounded channels push back to the receiver.
//! - `pop` hands a request to a consumer as a [`Lease`]; the lease holds the request's share of the queue's
//!   budget until it is settled or dropped, so the bounds cover requests in flight too.
//! - `settle` reports the request's fate. The in-memory queue resolves the acknowledgements there: a client
//!   hears `Delivered` only once the destination answered (behind a log, "the client" is the log stage, which
//!   then marks its entry done or keeps it for replay).
//! - `close` stops intake; `pop` drains what is left, then returns `None`.

mod memory;

use std::sync::Arc;

use async_trait::async_trait;

use otlake_core::{AckSet, Payload, Signal, Verdict};

pub use memory::MemoryQueue;

/// One request as the exporter will send it (already split under `max_request_bytes`).
#[derive(Debug)]
pub struct Request {
    pub payload: Arc<Payload>,
    pub acks: AckSet,
    pub items: usize,
    /// Protobuf-encoded size, what the byte bound counts.
    pub bytes: usize,
    /// Handed on by a write-ahead log, which keeps it and sends it again if the destination refuses us.
    pub logged: bool,
}

impl Request {
    pub fn new(payload: Arc<Payload>, acks: AckSet) -> Self {
        Request {
            items: payload.item_count(),
            bytes: payload.encoded_len(),
            payload,
            acks,
            logged: false,
        }
    }

    /// The same request, marked as handed on by a write-ahead log (see [`Request::logged`]).
    pub fn logged(mut self, logged: bool) -> Self {
        self.logged = logged;
        self
    }

    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }
}

/// Whatever a queue implementation needs to keep until a lease is settled (budget permits, a log position).
pub trait LeaseHold: Send + Sync {
    /// The request is done with; `acks` are the request's acknowledgements if the queue kept them with it.
    fn settle(self: Box<Self>, acks: AckSet, verdict: &Verdict);
}

/// A request taken by a consumer.
pub struct Lease {
    pub payload: Arc<Payload>,
    pub items: usize,
    pub bytes: usize,
    /// See [`Request::logged`].
    pub logged: bool,
    acks: AckSet,
    hold: Box<dyn LeaseHold>,
}

impl Lease {
    pub fn new(request: Request, hold: Box<dyn LeaseHold>) -> Self {
        Lease {
            payload: request.payload,
            items: request.items,
            bytes: request.bytes,
            logged: request.logged,
            acks: request.acks,
            hold,
        }
    }

    pub fn signal(&self) -> Signal {
        self.payload.signal()
    }

    /// Reports the request's fate to the queue, which resolves or records it.
    pub fn settle(self, verdict: Verdict) {
        self.hold.settle(self.acks, &verdict);
    }
}

/// Where requests wait for a consumer. See the module docs.
#[async_trait]
pub trait SendingQueue: Send + Sync + 'static {
    /// Enqueues, waiting while the queue is full; gives the request back if the queue is closed.
    async fn push(&self, request: Request) -> Result<(), Request>;

    /// The next request to send; `None` once the queue is closed and empty.
    async fn pop(&self) -> Option<Lease>;

    /// No more pushes; consumers drain what is left.
    fn close(&self);
}
