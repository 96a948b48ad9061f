//! otlake's end-to-end suite: the real daemon, driven by real OTLP clients (the Python OpenTelemetry SDK, raw
//! HTTP), checked through what a user would look at (the exporters' output, status codes, the CLI's text).

mod access;
mod bad_input;
mod burst;
mod cli;
mod commit_identity;
mod crash;
mod delta;
mod edit;
mod filelog;
mod forward;
mod inflate;
mod json;
mod limits;
mod loadgen;
mod process;
mod prometheus;
mod reload;
mod sampling;
mod sdk;
mod shutdown;
mod support;
mod telemetry;
mod wal;
