//! The rehearsal parts: product features for trying and rehearsing the
//! daemon without the vendor's credentials, not part of the data path.
//!
//! - [`simulator`]: a faithful stand-in for the vendor's Data API, served by
//!   `sonnys-etl simulate` and started in-process by the demo, the tests and
//!   the benchmarks.
//! - [`pgserver`]: a private PostgreSQL, started from the machine's server
//!   binaries, for the demo and the tests.
//! - [`demo`]: `sonnys-etl demo`, the whole product on one machine.
//!
//! Nothing on the data path (configuration to store, the service) depends
//! on this module. It is compiled with the cargo feature `rehearsal`, on by
//! default; `cargo build --no-default-features` builds the daemon without
//! it, and without the `demo` and `simulate` commands.

pub mod demo;
pub mod pgserver;
pub mod simulator;
