//! otlake-wal: the write-ahead log in front of an exporter (`sending_queue: {storage: wal}`).
//!
//! The key design decision: the log is a stage of the service, not a feature of each exporter. The service
//! puts a [`WalStage`] between the pipelines and any exporter whose section asks for it; the stage
//! acknowledges a request once it is fsynced to the log, then feeds the exporter from the log in order,
//! numbering each batch with its log sequence, and truncates the log only once the exporter answered
//! `Delivered` (its destination made the data durable). So every exporter gets a durable queue without
//! knowing about it, and an exporter that can make writes idempotent by sequence (Delta's `txn`) turns the
//! replay after a crash into exactly-once.
//!
//! - [`identity`]: the id the log's entries carry as their source (`SourcePosition::app_id`), kept in its directory;
//! - [`log`]: the log (append by group commit, truncation) over `log/{segment, checkpoint, group, scan,
//!   recover, reader}` (the files, the checkpoint, one commit's buffer, checking a segment, recovery, read-back);
//! - [`stage`]: the async stage (writer + dispatcher);
//! - [`config`]: the `sending_queue` keys and how they are split from the exporter's own;
//! - [`entry`], [`frame`]: the record body and its on-disk framing with CRC-32C.

pub mod config;
pub mod entry;
pub mod error;
pub mod frame;
pub mod identity;
pub mod log;
pub mod stage;

pub use config::{WalConfig, split_exporter_config};
pub use error::WalError;
pub use log::{Group, Wal, WalOptions};
pub use stage::WalStage;
