//! The two Google RPC messages a destination uses to explain a failure, decoded by hand with prost (four small
//! messages do not justify a `googleapis` dependency):
//! - `google.rpc.Status`: the body of an OTLP/HTTP error response, and the `grpc-status-details-bin` trailer.
//! - `google.rpc.RetryInfo`, inside a status's `details`: how long the server asks us to wait.

use std::time::Duration;

use prost::Message;

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

impl RpcStatus {
    /// The server's requested delay, if the status carries a `RetryInfo` (a zero or negative delay counts as
    /// "retry, no particular delay").
    pub fn retry_info(&self) -> Option<Duration> {
        let detail = self
            .details
            .iter()
            .find(|d| d.type_url == RETRY_INFO_TYPE)?;
        let info = RetryInfo::decode(detail.value.as_slice()).ok()?;
        let delay = info.retry_delay.unwrap_or_default();
        let seconds = u64::try_from(delay.seconds).unwrap_or(0);
        let nanos = u32::try_from(delay.nanos).unwrap_or(0).min(999_999_999);
        Some(Duration::new(seconds, nanos))
    }

    /// A status with a `RetryInfo` asking for `delay` (used by tests that play a throttling server).
    pub fn with_retry_info(code: i32, message: &str, delay: Duration) -> Self {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }),
        };
        RpcStatus {
            code,
            message: message.to_owned(),
            details: vec![Any {
                type_url: RETRY_INFO_TYPE.to_owned(),
                value: info.encode_to_vec(),
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips() {
        let status = RpcStatus::with_retry_info(8, "slow down", Duration::from_millis(1500));
        let decoded = RpcStatus::decode(status.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded.message, "slow down");
        assert_eq!(decoded.retry_info(), Some(Duration::from_millis(1500)));
        let plain = RpcStatus {
            code: 8,
            ..Default::default()
        };
        assert_eq!(plain.retry_info(), None);
    }
}
