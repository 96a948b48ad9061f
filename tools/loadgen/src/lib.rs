//! `otlake loadgen`: a load generator for any OTLP endpoint.
