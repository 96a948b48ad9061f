//! otlake processor: batch, with acknowledgements carried through
