//! The vendor's Data API as the daemon uses it: typed models of what the live
//! service really sends, errors typed by what a caller must do about them, and
//! a client whose every request passes through its API id's [`Budget`].
//!
//! [`Budget`]: crate::budget::Budget

mod client;
mod error;
pub mod model;
pub mod people;
pub mod policy;
pub mod summary;

pub use client::{walk_pages, Client, ClientError, JobHash, PAGE_SIZE};
pub use error::{ApiError, Disposition};
