//! otlake processor: consistent probability, rule-based and tail sampling
