//! In-process tests of the `otlp` receiver: a real receiver on 127.0.0.1 (port 0), pipelines the tests control,
//! real HTTP/1.1 and gRPC (h2c) clients. One binary for all of them, to keep link time down.

mod connections;
mod grpc;
mod http;
mod json;
mod lifecycle;
mod limits;
#[allow(dead_code)]
mod support;
