//! Shared pieces of the benchmarks: a sampling harness, a description of the machine a
//! run happened on, the keys and connections several benchmarks set up alike, and the
//! processes and traffic of the forwarding benchmark.
//!
//! The benchmarks themselves live in `benches/`; `benches/README.md` says how to run them
//! and how to read what they print.

pub mod forwarding;
pub mod harness;
pub mod machine;
pub mod setup;
