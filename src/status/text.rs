//! `status` output: placeholder until written.
