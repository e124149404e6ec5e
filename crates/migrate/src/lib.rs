//! dbopt-migrate: the migration stage of the data flow.
//!
//! Sits after propose and before evaluate: a pure `MigrationPlan` (what to rewrite into which
//! layout, in which units) is queued as a catalog job; a worker claims it with a lease,
//! rewrites the source layout through the engine into staging, verifies row count and digest,
//! renames the result into place and publishes it in one fenced catalog transaction. `gc`
//! removes what crashes and rejected layouts leave behind.

pub mod error;
pub mod gc;
pub mod plan;
pub mod run;
pub mod worker;

pub use error::{Fault, MigrateError};
pub use gc::{GcInput, GcPlan, plan_gc};
pub use plan::{MigrationPlan, PlanRequest};
pub use run::{JobContext, JobOutcome, run_job};
pub use worker::{WorkerOptions, WorkerReport, run_worker};
