//! palisade guard pipeline.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod args;
mod verdict;
pub use verdict::{DenyReason, Verdict};
