//! The exporters against real servers run in-process on 127.0.0.1: an axum OTLP/HTTP server and a tonic
//! OTLP/gRPC server written here, each recording what arrived and answering from a script. One test binary
//! (link time); every wait is bounded.

mod bench;
mod common;
mod config;
mod grpc;
mod grpc_server;
mod http;
mod http_server;
mod tls;
