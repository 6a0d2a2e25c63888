//! TODO(helper): see args/mod.rs
