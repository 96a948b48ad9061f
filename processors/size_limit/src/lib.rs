//! otlake processor: request, record and log-line size limits
