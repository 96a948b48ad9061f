//! otlake exporters: otlp (gRPC) and otlphttp, to one destination
