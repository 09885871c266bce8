//! The status page: placeholder until written.
