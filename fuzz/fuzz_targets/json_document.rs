//! Fuzz target: the JSON documents through the real router: the first byte picks the route, the rest is the body.
//! The body is shared with the normal suite's tests/no_panic.rs.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::json_document(data));
