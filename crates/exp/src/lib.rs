//! dbopt-exp: layout experiments as a reproducible store.
//!
//! Sits beside the main data flow (DESIGN.md): `dbopt exp` and bench/ write runs here, and
//! DuckDB or dbopt read them in place. This crate plans the store: canonical parameters and
//! grid ids, the directory tree and its marker (`store`), the column types every file agrees
//! on (`columns`) and the SQL views over it (`views`); the facade writes the Parquet files
//! through the engine.
//!
//! A grid is one parameter set of an experiment; its runs (one per seed) live under an id
//! derived from the parameters' content, so the same parameters always land in the same place
//! and different parameters never share one.
//!
//! The canonical form is specified in docs/grid-ids.md: volatile keys (timestamps, hosts,
//! paths, `_private`) and the top-level `seed` are dropped, the rest is serialized as RFC 8785
//! (JSON Canonicalization Scheme) text, and the grid id is a prefix of its SHA-256.
//! docs/grid_id.py is the reference implementation; `tests/vectors.json` holds the vectors
//! both must agree on.

mod canonical;
pub mod columns;
mod error;
pub mod store;
pub mod views;

pub use canonical::{
    Canonical, DEFAULT_ID_CHARS, MAX_ID_CHARS, ParamValue, SEED_KEY, canonical_json, canonicalize,
    flatten_params, grid_id, is_volatile_key, sha256_hex, take_seed,
};
pub use error::ExpError;
