//! dbopt-core: the vocabulary every stage shares.
//!
//! Sits at the bottom of the data flow: table names, layout specs and manifests,
//! content-addressed layout ids, the order-insensitive row digest, the resolved
//! configuration, the clock, the one retry policy, and the constants and text helpers that
//! several stages must agree on. No IO beyond reading a config file.

pub mod clock;
pub mod config;
pub mod curve;
pub mod digest;
pub mod error;
pub mod failpoint;
pub mod layout;
pub mod names;
pub mod plan_summary;
pub mod retry;
pub mod scan;
pub mod text;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigSource, ConfigValue, Settings};
pub use digest::{FLOAT_RELATIVE_TOLERANCE, RowDigest};
pub use error::CoreError;
pub use failpoint::fail_point;
pub use layout::{
    Curve, FileShape, LayoutId, LayoutManifest, LayoutSpec, ManifestFile, SortKey, SpecChange,
};
pub use names::TableName;
pub use scan::ScanMetrics;
