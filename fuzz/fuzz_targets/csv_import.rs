//! Fuzz target: the CSV importer: the first byte picks the kind (items, parties, locations, purchases), the rest is the file.
//! The body is shared with the normal suite's tests/no_panic.rs.
#![no_main]

#[allow(dead_code)]
#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::csv_import(data));
