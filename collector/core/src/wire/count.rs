//! [`count`]: the item and entry counts of a request that passed [`super::validate`], read from its outer
//! levels only (request → resource → scope → entries, and a metric's data points), without decoding it.
//! The counts are those the decoded request gives (`ExportRequest::item_count` and `entry_count`).

use super::reader::{LENGTH_DELIMITED, RECURSION_LIMIT, Reader, skip};
use crate::Signal;

/// Items (spans, log records, metric data points) and entries (spans, log records, `Metric`s) of a request that
/// passed [`validate`](super::validate), counted as the decoded request would count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub items: usize,
    pub entries: usize,
}

/// The length-delimited values of field `tag` in one message (validated bytes: stops at anything odd).
fn each_message<'a>(bytes: &'a [u8], tag: u32, mut visit: impl FnMut(&'a [u8])) {
    let mut reader = Reader(bytes);
    while !reader.is_empty() {
        let Ok((field, wire_type)) = reader.key() else {
            return;
        };
        if field == tag && wire_type == LENGTH_DELIMITED {
            match reader.length_delimited() {
                Ok(value) => visit(value),
                Err(_) => return,
            }
        } else if skip(wire_type, field, &mut reader, RECURSION_LIMIT).is_err() {
            return;
        }
    }
}

/// Counts the items and entries of a request that passed [`validate`](super::validate).
pub fn count(signal: Signal, bytes: &[u8]) -> Counts {
    let mut counts = Counts::default();
    // Every level is `repeated` field 2 of the one above (resource → scope → entries), under the request's field 1.
    each_message(bytes, 1, |resource| {
        each_message(resource, 2, |scope| match signal {
            Signal::Traces | Signal::Logs => each_message(scope, 2, |_| {
                counts.items += 1;
                counts.entries += 1;
            }),
            Signal::Metrics => each_message(scope, 2, |metric| {
                counts.entries += 1;
                counts.items += metric_data_points(metric);
            }),
        })
    });
    counts
}

/// The data points of one `Metric`, with prost's oneof semantics: the last `data` variant present wins, and
/// repeated occurrences of the same variant merge.
fn metric_data_points(metric: &[u8]) -> usize {
    let mut variant = 0u32;
    let mut points = 0usize;
    let mut reader = Reader(metric);
    while !reader.is_empty() {
        let Ok((tag, wire_type)) = reader.key() else {
            break;
        };
        if matches!(tag, 5 | 7 | 9 | 10 | 11) && wire_type == LENGTH_DELIMITED {
            let Ok(data) = reader.length_delimited() else {
                break;
            };
            let mut here = 0;
            each_message(data, 1, |_| here += 1);
            if tag == variant {
                points += here;
            } else {
                variant = tag;
                points = here;
            }
        } else if skip(wire_type, tag, &mut reader, RECURSION_LIMIT).is_err() {
            break;
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::ExportRequest;
    use crate::test_util::{sample_logs, sample_metrics, sample_traces};
    use crate::wire::validate;

    fn samples() -> Vec<ExportRequest> {
        vec![
            ExportRequest::Traces(sample_traces(2, 3)),
            ExportRequest::Logs(sample_logs(2, 3)),
            ExportRequest::Metrics(sample_metrics(3)),
        ]
    }

    #[test]
    fn valid_requests_pass_and_count_like_the_decoded_request() {
        for request in samples() {
            let bytes = request.encode_to_vec();
            validate(request.signal(), &bytes).expect("valid");
            assert_eq!(
                count(request.signal(), &bytes),
                Counts {
                    items: request.item_count(),
                    entries: request.entry_count()
                }
            );
        }
    }
}
