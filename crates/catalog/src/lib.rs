//! placeholder
pub use rusqlite;
