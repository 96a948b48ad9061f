//! OTLP/gRPC over h2c `tonic` channels, sending the pre-encoded request bytes as they are (a pass-through
//! codec), so the generator never re-encodes a message.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes};
use http::uri::PathAndQuery;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::{Answer, partial_success};
use crate::LoadgenError;
use crate::args::{Compression, LoadgenArgs, Signal};

pub struct GrpcClient {
    channels: Vec<Channel>,
    next: AtomicUsize,
    gzip: bool,
    timeout: Duration,
    headers: Vec<(
        MetadataKey<tonic::metadata::Ascii>,
        MetadataValue<tonic::metadata::Ascii>,
    )>,
}

fn path(signal: Signal) -> PathAndQuery {
    PathAndQuery::from_static(match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    })
}

impl GrpcClient {
    pub fn new(args: &LoadgenArgs) -> Result<GrpcClient, LoadgenError> {
        let url = args.endpoint_url();
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| LoadgenError::Endpoint {
                url,
                reason: e.to_string(),
            })?
            .tcp_nodelay(true);
        // Lazy: a refused connection shows up as a retryable answer of the first requests, not as a start-up error.
        let channels = (0..args.connections)
            .map(|_| endpoint.connect_lazy())
            .collect();
        let mut headers = Vec::new();
        for (k, v) in &args.headers {
            let bad = || LoadgenError::Header(format!("{k}={v}"));
            headers.push((
                MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()).map_err(|_| bad())?,
                v.parse().map_err(|_| bad())?,
            ));
        }
        Ok(GrpcClient {
            channels,
            next: AtomicUsize::new(0),
            gzip: args.compression == Compression::Gzip,
            timeout: args.timeout,
            headers,
        })
    }

    pub async fn send(&self, signal: Signal, body: Bytes) -> Answer {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        let mut grpc = tonic::client::Grpc::new(self.channels[i].clone());
        if self.gzip {
            grpc = grpc.send_compressed(CompressionEncoding::Gzip);
        }
        if let Err(e) = grpc.ready().await {
            return Answer::Retryable {
                reason: format!("connection: {e}"),
                retry_after: None,
            };
        }
        let mut request = tonic::Request::new(body);
        request.set_timeout(self.timeout);
        for (k, v) in &self.headers {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        let call = grpc.unary(request, path(signal), PassThrough::<Bytes>(PhantomData));
        let response = match tokio::time::timeout(self.timeout + Duration::from_secs(1), call).await
        {
            Err(_) => {
                return Answer::Retryable {
                    reason: format!("no answer within {:?}", self.timeout),
                    retry_after: None,
                };
            }
            Ok(result) => result,
        };
        match response {
            Ok(answer) => match partial_success(signal, answer.get_ref()) {
                Ok((rejected, message)) => Answer::Accepted { rejected, message },
                Err(e) => Answer::Refused {
                    reason: format!("undecodable answer: {e}"),
                },
            },
            Err(status) => classify(&status),
        }
    }
}

fn classify(status: &Status) -> Answer {
    let reason = format!("gRPC {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Answer::Retryable {
            reason,
            retry_after: None,
        },
        _ => Answer::Refused { reason },
    }
}

/// Sends `Bytes` as the message and hands back the answer's bytes: the caller encodes and decodes.
struct PassThrough<T>(PhantomData<fn() -> T>);

impl Codec for PassThrough<Bytes> {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCoder;
    type Decoder = BytesCoder;
    fn encoder(&mut self) -> BytesCoder {
        BytesCoder
    }
    fn decoder(&mut self) -> BytesCoder {
        BytesCoder
    }
}

struct BytesCoder;

impl Encoder for BytesCoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for BytesCoder {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_as_the_otlp_spec_says() {
        assert!(matches!(
            classify(&Status::unavailable("down")),
            Answer::Retryable { .. }
        ));
        assert!(matches!(
            classify(&Status::resource_exhausted("full")),
            Answer::Retryable { .. }
        ));
        match classify(&Status::invalid_argument("bad span")) {
            Answer::Refused { reason } => assert!(reason.contains("bad span"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
