//! The `google.rpc` messages OTLP error answers use, for receivers that send them and exporters that read
//! them: `Status` (the body of every OTLP/HTTP error, and the `grpc-status-details-bin` of a gRPC error) and
//! `RetryInfo` (how long the server asks the client to wait).
//!
//! Written out with prost's derive rather than pulling a `googleapis` crate for four small messages; field
//! numbers are those of `google/rpc/status.proto`, `google/rpc/error_details.proto` and
//! `google/protobuf/{any,duration}.proto`.

use std::time::Duration;

use prost::Message;

/// The `type_url` of a `RetryInfo` detail.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// A gRPC status code (`tonic::Code as i32`).
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl RpcStatus {
    /// A status with a gRPC `code` (`tonic::Code::Unavailable as i32`) and no details.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcStatus {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a `RetryInfo` detail saying when to retry.
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }),
        };
        self.details.push(ProtoAny {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        });
        self
    }

    /// The delay a `RetryInfo` detail asks for, if the status carries one. A missing, zero or negative delay
    /// counts as "retry, no particular delay" (`Duration::ZERO`).
    pub fn retry_delay(&self) -> Option<Duration> {
        let detail = self
            .details
            .iter()
            .find(|d| d.type_url == RETRY_INFO_TYPE_URL)?;
        let info = RetryInfo::decode(detail.value.as_slice()).ok()?;
        let delay = info.retry_delay.unwrap_or_default();
        let seconds = u64::try_from(delay.seconds).unwrap_or(0);
        let nanos = u32::try_from(delay.nanos).unwrap_or(0).min(999_999_999);
        Some(Duration::new(seconds, nanos))
    }

    /// The proto3 JSON form: `{"code": 3, "message": "..."}` (details are only sent over gRPC).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"code": self.code, "message": self.message}))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNAVAILABLE: i32 = 14;

    #[test]
    fn retry_delay_round_trips_through_the_encoded_status() {
        let status =
            RpcStatus::new(UNAVAILABLE, "busy").with_retry_delay(Duration::from_millis(1500));
        let decoded = RpcStatus::decode(status.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(decoded.code, UNAVAILABLE);
        assert_eq!(decoded.message, "busy");
        assert_eq!(decoded.retry_delay(), Some(Duration::from_millis(1500)));
        let json: serde_json::Value = serde_json::from_slice(&decoded.to_json()).expect("json");
        assert_eq!(json, serde_json::json!({"code": 14, "message": "busy"}));
    }

    #[test]
    fn no_retry_info_means_no_delay_and_an_empty_one_means_retry_now() {
        assert_eq!(RpcStatus::new(8, "slow down").retry_delay(), None);
        let mut empty = RpcStatus::new(8, "slow down");
        empty.details.push(ProtoAny {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: RetryInfo { retry_delay: None }.encode_to_vec(),
        });
        assert_eq!(empty.retry_delay(), Some(Duration::ZERO));
    }
}
