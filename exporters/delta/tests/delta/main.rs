//! Integration tests of the `delta` exporter against real tables, real readers and real object stores, in one
//! binary to keep link time down.

#[path = "../common/data.rs"]
mod data;
mod harness;

mod acks;
mod exactly_once;
mod faults;
mod maintenance;
mod object_stores;
mod roundtrip;
mod wire_differential;
