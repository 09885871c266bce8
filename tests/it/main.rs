//! Integration tests of sonnys-etl, one binary for all.

mod simulator;
