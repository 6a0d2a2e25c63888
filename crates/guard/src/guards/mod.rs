//! The concrete guards, in pipeline order (see [`crate::Pipeline`]).

mod arguments;
mod limits;
mod tools;

pub use arguments::Arguments;
pub use limits::Limits;
pub use tools::{ToolAccess, classify_tool};
