//! What a request's rows repeat from their groups, measured before converting it.
//!
//! Every row carries its resource and scope (and a metric point its metric's name, description, unit and
//! metadata), so the Arrow data of a request grows as items × group size, not as the request's size: one
//! 1 MiB resource attribute over 2,100 spans is 1.1 MB on the wire and 2.2 GB of rows, past Arrow's 32-bit
//! string offsets (a panic) or the process's memory. A request whose rows would repeat more than
//! [`MAX_REPEATED_BYTES`] is refused before any of it is converted ([`ConvertError::Repetition`]); a builder
//! holding [`CHUNK_REPEATED_BYTES`] is finished early (see [`super::Rows::is_full`]), so neither one request
//! nor many small ones can push a chunk near the offset limit. Sizes are the encoded protobuf sizes, close to
//! what the text and Variant encodings take.

use otlake_core::ExportRequest;
use otlake_core::payload::data_point_count;
use otlake_core::proto::common::v1::InstrumentationScope;
use otlake_core::proto::metrics::v1::Metric;
use otlake_core::proto::resource::v1::Resource;
use otlake_core::wire::{FieldCursor, WireError};
use prost::Message;

use super::wire_attrs::message;

/// The most one request's rows may repeat from their groups. 8,192 spans (a full batch) × 8 KiB of resource
/// and scope attributes; a Kubernetes resource is usually 1-3 KiB.
pub const MAX_REPEATED_BYTES: u64 = 64 << 20;

/// A chunk of rows whose repeated group data reaches this size is finished before the next request.
pub(crate) const CHUNK_REPEATED_BYTES: u64 = 32 << 20;

/// Why a request was not converted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// Bytes that prost would not decode either.
    #[error("the request's protobuf does not parse: {0}")]
    Wire(#[from] WireError),
    /// The rows would repeat too much of their groups (see the module docs).
    #[error(
        "its rows would repeat {} of resource, scope and metric attributes ({rows} rows), over the limit of \
         {} per request: send fewer items per request or a smaller resource",
        mib(*bytes),
        mib(MAX_REPEATED_BYTES)
    )]
    Repetition { bytes: u64, rows: u64 },
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

/// Refuses a request whose rows would repeat more than [`MAX_REPEATED_BYTES`]; returns what they repeat.
pub(crate) fn check(repeated: Repeated) -> Result<u64, ConvertError> {
    if repeated.bytes > MAX_REPEATED_BYTES {
        return Err(ConvertError::Repetition {
            bytes: repeated.bytes,
            rows: repeated.rows,
        });
    }
    Ok(repeated.bytes)
}

/// Rows and the group bytes they repeat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Repeated {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
}

impl Repeated {
    fn add(&mut self, rows: usize, group_bytes: usize) {
        let rows = rows as u64;
        self.rows = self.rows.saturating_add(rows);
        self.bytes = self
            .bytes
            .saturating_add(rows.saturating_mul(group_bytes as u64));
    }
}

/// For a wire request of spans or log records (request → resource groups → scope groups → items, the same
/// field numbers for both), without decoding anything.
pub(crate) fn of_wire(request: &[u8]) -> Result<Repeated, WireError> {
    of_wire_items(request, |_| Ok((1, 0)))
}

/// For a wire request whose item (field 2 of a scope group) gives `item(bytes)` rows, each repeating that
/// many more bytes of the item's own (a metric: its data points, and its name, description, unit and
/// metadata).
pub(crate) fn of_wire_items(
    request: &[u8],
    mut item: impl FnMut(&[u8]) -> Result<(usize, usize), WireError>,
) -> Result<Repeated, WireError> {
    let mut repeated = Repeated::default();
    let top = FieldCursor::new(request);
    let mut fields = top;
    while let Some((tag, field)) = fields.next_field()? {
        if tag != 1 {
            continue;
        }
        let group = top.enter(message(field)?)?;
        let resource = own_bytes(group)?;
        let mut scopes = group;
        while let Some((tag, field)) = scopes.next_field()? {
            if tag != 2 {
                continue;
            }
            let scope_group = group.enter(message(field)?)?;
            let scope = own_bytes(scope_group)?;
            let mut fields = scope_group;
            while let Some((tag, field)) = fields.next_field()? {
                if tag == 2 {
                    let (rows, own) = item(message(field)?)?;
                    repeated.add(rows, resource + scope + own);
                }
            }
        }
    }
    Ok(repeated)
}

/// The bytes of a group's own message (field 1, given once or more).
fn own_bytes(group: FieldCursor<'_>) -> Result<usize, WireError> {
    let mut bytes = 0;
    let mut fields = group;
    while let Some((tag, field)) = fields.next_field()? {
        if tag == 1 {
            bytes += message(field)?.len();
        }
    }
    Ok(bytes)
}

/// For a decoded request.
pub(crate) fn of_request(request: &ExportRequest) -> Repeated {
    let mut repeated = Repeated::default();
    match request {
        ExportRequest::Traces(r) => {
            for rs in &r.resource_spans {
                let resource = resource_bytes(rs.resource.as_ref());
                for ss in &rs.scope_spans {
                    repeated.add(ss.spans.len(), resource + scope_bytes(ss.scope.as_ref()));
                }
            }
        }
        ExportRequest::Logs(r) => {
            for rl in &r.resource_logs {
                let resource = resource_bytes(rl.resource.as_ref());
                for sl in &rl.scope_logs {
                    repeated.add(
                        sl.log_records.len(),
                        resource + scope_bytes(sl.scope.as_ref()),
                    );
                }
            }
        }
        ExportRequest::Metrics(r) => {
            for rm in &r.resource_metrics {
                let resource = resource_bytes(rm.resource.as_ref());
                for sm in &rm.scope_metrics {
                    let group = resource + scope_bytes(sm.scope.as_ref());
                    for metric in &sm.metrics {
                        repeated.add(data_point_count(metric), group + metric_bytes(metric));
                    }
                }
            }
        }
    }
    repeated
}

fn resource_bytes(resource: Option<&Resource>) -> usize {
    resource.map_or(0, Message::encoded_len)
}

fn scope_bytes(scope: Option<&InstrumentationScope>) -> usize {
    scope.map_or(0, Message::encoded_len)
}

/// What each point of a metric repeats of it: name, description, unit, metadata.
fn metric_bytes(metric: &Metric) -> usize {
    metric.name.len()
        + metric.description.len()
        + metric.unit.len()
        + metric
            .metadata
            .iter()
            .map(Message::encoded_len)
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlake_core::test_util::{kv, sample_logs, sample_metrics, sample_traces};

    #[test]
    fn the_wire_and_decoded_measures_agree() {
        let mut traces = sample_traces(3, 4);
        traces.resource_spans[1]
            .resource
            .get_or_insert_with(Default::default)
            .attributes
            .push(kv("big", &"x".repeat(5000)));
        let request = ExportRequest::from(traces);
        let wire = of_wire(&request.encode_to_vec()).expect("valid");
        assert_eq!(wire, of_request(&request));
        assert_eq!(wire.rows, 12);
        assert!(wire.bytes > 4 * 5000, "{wire:?}");
        let logs = ExportRequest::from(sample_logs(2, 3));
        assert_eq!(
            of_wire(&logs.encode_to_vec()).expect("valid"),
            of_request(&logs)
        );
        let mut metrics = sample_metrics(2);
        let metric = &mut metrics.resource_metrics[1].scope_metrics[0].metrics[1];
        metric.description = "d".repeat(300);
        metric.metadata.push(kv("source", "dcgm"));
        let metrics = ExportRequest::from(metrics);
        let wire = super::super::metrics::repeated_wire(&metrics.encode_to_vec()).expect("valid");
        assert_eq!(wire, of_request(&metrics));
        assert_eq!(wire.rows, metrics.item_count() as u64);
    }

    #[test]
    fn metric_points_repeat_their_metric_and_groups() {
        let request = ExportRequest::from(sample_metrics(2));
        let repeated = of_request(&request);
        assert_eq!(repeated.rows, request.item_count() as u64);
        assert!(repeated.bytes > 0);
    }

    #[test]
    fn a_request_over_the_limit_is_refused_naming_it() {
        let over = Repeated {
            rows: 2100,
            bytes: 2100 << 20,
        };
        let message = check(over).expect_err("over").to_string();
        assert!(
            message.contains("2100 MiB") && message.contains("64 MiB"),
            "{message}"
        );
        assert_eq!(check(Repeated { rows: 1, bytes: 10 }).expect("under"), 10);
    }
}
