//! placeholder
pub use tpchgen_arrow;
