//! Fuzz target: the decimal, quantity, money and rate parsers and the arithmetic on what they accept.
//! The body is shared with the normal suite's tests/no_panic.rs.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::decimal(data));
