//! A tonic codec that sends bytes already encoded as protobuf and decodes the prost response.
//!
//! Why not the generated `TraceServiceClient`: it takes the request message by value, so every attempt would
//! deep-copy a batch that fan-out shares behind an `Arc`, and encode it again. With this codec the request is
//! encoded once per batch and every retry sends the same bytes (tonic still adds framing and compression).

use std::marker::PhantomData;

use bytes::{BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends `Bytes` as the message; decodes `R`.
pub struct PreEncodedCodec<R>(PhantomData<R>);

impl<R> Default for PreEncodedCodec<R> {
    fn default() -> Self {
        PreEncodedCodec(PhantomData)
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for PreEncodedCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

pub struct ProstDecoder<R>(PhantomData<R>);

impl<R: prost::Message + Default> Decoder for ProstDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("cannot decode the response: {e}")))
    }
}
