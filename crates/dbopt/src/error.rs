//! The facade's error: every stage's error plus the workspace's own, each one line.

use dbopt_catalog::CatalogError;
use dbopt_core::CoreError;
use dbopt_engine::EngineError;

/// An error from any stage, with whether the user can fix it by changing the input.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A name, spec or configuration value is wrong.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The catalog refused or failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Planning, execution, reading or writing failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A generator failed.
    #[error(transparent)]
    Data(#[from] dbopt_data::DataError),
    /// A report could not be written.
    #[error(transparent)]
    Report(#[from] dbopt_report::ReportError),
    /// The table is already managed.
    #[error(
        "table '{0}' already exists: pass --replace to overwrite it, or choose another --table-name"
    )]
    TableExists(String),
    /// A migration failed or was refused.
    #[error(transparent)]
    Migrate(#[from] dbopt_migrate::MigrateError),
    /// A migration job failed for good (`user_error` when its input was at fault).
    #[error("migration job {job} failed: {reason}")]
    JobFailed {
        /// The job id.
        job: i64,
        /// Why.
        reason: String,
        /// True when the input (spec, data) was at fault, not the machine.
        user_error: bool,
    },
    /// The network failed after retries.
    #[error("{0}")]
    Network(String),
    /// A bug or a crashed helper thread: not the user's fault.
    #[error("internal error: {0}")]
    Internal(String),
    /// A routing policy or its parameters were refused.
    #[error(transparent)]
    Route(#[from] dbopt_route::RouteError),
    /// An experiment store error.
    #[error(transparent)]
    Exp(#[from] dbopt_exp::ExpError),
    /// An objective or reward weight was refused.
    #[error(transparent)]
    Evaluate(#[from] dbopt_evaluate::EvaluateError),
    /// The proposer was given something it cannot lay out.
    #[error(transparent)]
    Propose(#[from] dbopt_propose::ProposeError),
    /// A configuration key whose value a stage refused.
    #[error("configuration key {key}: {source}")]
    Setting {
        /// The key.
        key: &'static str,
        /// The stage's reason.
        #[source]
        source: Box<DbError>,
    },
    /// A command-line value that cannot be used as given.
    #[error("{0}")]
    BadArgument(String),
    /// A duration that does not parse.
    #[error("invalid duration '{0}': use a number with s, m, h, d or w, e.g. 30m or 7d")]
    BadDuration(String),
    /// A layout id that names no layout of the table.
    #[error("table '{table}' has no layout '{layout}': run `dbopt tables` to list its layouts")]
    UnknownLayout {
        /// The table.
        table: String,
        /// The layout id as given.
        layout: String,
    },
    /// A layout id of another table.
    #[error("layout {layout} belongs to table '{owner}', not '{table}'")]
    LayoutOfOtherTable {
        /// The table named.
        table: String,
        /// The layout.
        layout: String,
        /// The table it belongs to.
        owner: String,
    },
    /// A layout that cannot serve queries in its state.
    #[error(
        "layout {layout} of table '{table}' is {status}: only a ready layout can serve queries"
    )]
    LayoutNotReady {
        /// The table.
        table: String,
        /// The layout.
        layout: String,
        /// Its status.
        status: String,
    },
    /// A layout's directory vanished from the data directory.
    #[error(
        "layout directory {dir} is missing: the data directory was moved or cleaned; regenerate or reload table '{table}'"
    )]
    LayoutDirMissing {
        /// The table.
        table: String,
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// A command that needs the data directory on local disk, with `DATA_DIR` on object storage.
    #[error("{0} is not supported with DATA_DIR on object storage: run it with a local DATA_DIR")]
    LocalDataOnly(String),
    /// A SQL client's statement, but the workspace has no managed table.
    #[error(
        "no managed tables to query: load one first (`dbopt load-dataset`, `dbopt generate` or `dbopt demo`)"
    )]
    NoTables,
    /// A table with no ready layout to route to.
    #[error("table '{0}' has no ready layout to route to: run `dbopt tables` and reload the table")]
    NoReadyLayout(String),
    /// Promote refused: the layout failed its canary.
    #[error(
        "layout {layout} of table '{table}' failed its canary ({reason}): fix or rebuild it, or pass --force to promote it anyway"
    )]
    CanaryFailed {
        /// The table.
        table: String,
        /// The layout.
        layout: String,
        /// The canary's verdict.
        reason: String,
    },
    /// A canary asked of the active layout itself.
    #[error(
        "layout {layout} is the active layout of table '{table}': a canary compares a candidate with it; name another layout"
    )]
    CanaryOnActive {
        /// The table.
        table: String,
        /// The layout.
        layout: String,
    },
    /// Rollback with nothing to roll back to.
    #[error(
        "table '{table}' has no earlier active layout to roll back to (it reads '{current}'): name one with --to"
    )]
    NoRollbackTarget {
        /// The table.
        table: String,
        /// Its active layout.
        current: String,
    },
    /// A table without rows where rows are needed.
    #[error("table '{table}' has no rows at layout '{layout}': load data before analyzing it")]
    EmptyTable {
        /// The table.
        table: String,
        /// The layout read.
        layout: String,
    },
    /// Nothing logged to learn from.
    #[error(
        "no logged queries for table '{table}'{window}: run `dbopt query` or `dbopt run-workload` first"
    )]
    NoLoggedQueries {
        /// The table.
        table: String,
        /// The window, as " in the last 7d", or empty.
        window: String,
    },
    /// Logged queries that no longer plan.
    #[error(
        "none of the {count} logged queries for table '{table}' can be planned any more (first: {first}): the table's columns may have changed; log new queries with `dbopt query`"
    )]
    NoPlannableQueries {
        /// The table.
        table: String,
        /// How many were logged.
        count: usize,
        /// The first planning error.
        first: String,
    },
    /// A cluster with no analyzable queries.
    #[error(
        "no analyzable logged queries of cluster {cluster} for table '{table}': `dbopt analyze` lists the clusters"
    )]
    EmptyCluster {
        /// The table.
        table: String,
        /// The cluster id.
        cluster: String,
    },
    /// An evaluation window without measured queries.
    #[error(
        "no measured queries of table '{table}' in the last {window}: run queries first or widen --window"
    )]
    NoMeasuredQueries {
        /// The table.
        table: String,
        /// The window, human-readable.
        window: String,
    },
    /// A workload template name that does not exist.
    #[error("unknown template '{name}': known templates are {known}")]
    UnknownTemplate {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// Template filters that leave nothing to draw from.
    #[error("{0}")]
    NoTemplates(&'static str),
    /// A workload file (SQL or templates) that does not parse.
    #[error(transparent)]
    WorkloadFile(dbopt_data::workload_spec::WorkloadFileError),
    /// A user file (workload, query log, intent) that cannot be used.
    #[error("{0}")]
    BadFile(String),
    /// Files offered as a layout that are not one of this table.
    #[error("{0}")]
    NotALayout(String),
    /// A TPC-H command that cannot run on the tables at hand.
    #[error("{0}")]
    Tpch(String),
    /// An address that cannot be served on.
    #[error("{0}")]
    BadAddress(String),
    /// This process keeps no column-chunk cache.
    #[error(
        "this server keeps no column-chunk cache: cache_max_bytes is 0; set it (e.g. 1GiB) and restart dbopt serve"
    )]
    CacheOff,
    /// A running `dbopt serve` cannot be reached.
    #[error("{0}")]
    ServerUnreachable(String),
    /// A running `dbopt serve` failed to answer.
    #[error("dbopt serve failed: {0}")]
    ServerFailed(String),
    /// Another process holds what this one needs.
    #[error("{0}")]
    Busy(String),
    /// A load source inside the data directory.
    #[error(
        "source {source_path} is inside the data directory {data_dir}: load from a path outside it"
    )]
    SourceInsideDataDir {
        /// The source.
        source_path: std::path::PathBuf,
        /// The data directory.
        data_dir: std::path::PathBuf,
    },
    /// A proposal id that does not exist.
    #[error("no proposal {id}: run `dbopt propose --table-name {table}` to list proposals")]
    UnknownProposal {
        /// The id given.
        id: i64,
        /// The table named.
        table: String,
    },
    /// A proposal of another table.
    #[error("proposal {id} is for table '{owner}', not '{table}'")]
    ProposalOfOtherTable {
        /// The id given.
        id: i64,
        /// The table named.
        table: String,
        /// The proposal's table.
        owner: String,
    },
    /// No stored proposal to migrate to.
    #[error(
        "no stored proposal for table {0}: run `dbopt propose --table-name {0}` or give a spec (--sort-by ...)"
    )]
    NoProposal(String),
    /// A migration that would change nothing.
    #[error("{0}: nothing to migrate")]
    NothingToMigrate(String),
    /// A migration whose target layout is already built.
    #[error(
        "layout {layout} of table '{table}' already exists: activate it with `dbopt activate-layout`"
    )]
    LayoutExists {
        /// The table.
        table: String,
        /// The layout.
        layout: String,
    },
    /// A load source that cannot be loaded as given.
    #[error("{0}")]
    BadSource(String),
    /// A download that is not what was asked for (a missing month, an HTML page, a bad file).
    #[error("{0}")]
    BadDownload(String),
    /// A table that does not hold NYC taxi trips.
    #[error("{0}")]
    NotATaxiTable(String),
    /// File system error with context.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl DbError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DbError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the input (a name, SQL, a path, a file) is at fault, not the machine.
    pub fn is_user_error(&self) -> bool {
        self.exit_code() == 2
    }

    /// The process exit code this error means: 2 for the classes the user can fix by changing
    /// the input (listed here one by one), 1 for everything else (the machine, the network,
    /// a bug).
    pub fn exit_code(&self) -> u8 {
        let user = match self {
            DbError::Engine(e) => engine_user_error(e),
            DbError::Catalog(e) => {
                !matches!(e, CatalogError::Sqlite { .. } | CatalogError::Corrupt(_))
            }
            DbError::Report(e) => e.is_user_error(),
            DbError::Migrate(e) => e.is_user_error(),
            DbError::Exp(e) => e.is_user_error(),
            DbError::JobFailed { user_error, .. } => *user_error,
            DbError::Setting { source, .. } => source.is_user_error(),
            DbError::Core(_)
            | DbError::Data(_)
            | DbError::Route(_)
            | DbError::Evaluate(_)
            | DbError::Propose(_)
            | DbError::TableExists(_)
            | DbError::BadArgument(_)
            | DbError::BadDuration(_)
            | DbError::UnknownLayout { .. }
            | DbError::LayoutOfOtherTable { .. }
            | DbError::LayoutNotReady { .. }
            | DbError::LayoutDirMissing { .. }
            | DbError::LocalDataOnly(_)
            | DbError::NoReadyLayout(_)
            | DbError::NoTables
            | DbError::CanaryFailed { .. }
            | DbError::CanaryOnActive { .. }
            | DbError::NoRollbackTarget { .. }
            | DbError::EmptyTable { .. }
            | DbError::NoLoggedQueries { .. }
            | DbError::NoPlannableQueries { .. }
            | DbError::EmptyCluster { .. }
            | DbError::NoMeasuredQueries { .. }
            | DbError::UnknownTemplate { .. }
            | DbError::NoTemplates(_)
            | DbError::BadFile(_)
            | DbError::WorkloadFile(_)
            | DbError::NotALayout(_)
            | DbError::Tpch(_)
            | DbError::BadAddress(_)
            | DbError::CacheOff
            | DbError::Busy(_)
            | DbError::SourceInsideDataDir { .. }
            | DbError::UnknownProposal { .. }
            | DbError::ProposalOfOtherTable { .. }
            | DbError::NoProposal(_)
            | DbError::NothingToMigrate(_)
            | DbError::LayoutExists { .. }
            | DbError::BadSource(_)
            | DbError::BadDownload(_)
            | DbError::NotATaxiTable(_) => true,
            DbError::Io { .. }
            | DbError::Network(_)
            | DbError::Internal(_)
            | DbError::ServerUnreachable(_)
            | DbError::ServerFailed(_) => false,
        };
        if user { 2 } else { 1 }
    }
}

/// Whether an engine error is the input's fault: IO, a failed write, exhausted resources and
/// an object-store request that failed during work are the machine's.
fn engine_user_error(e: &EngineError) -> bool {
    !matches!(
        e,
        EngineError::Io { .. }
            | EngineError::Write { .. }
            | EngineError::Resources(_)
            | EngineError::StoreFailed(_)
            | EngineError::ClusterFailed(_)
    )
}

/// Reaches a named fail point (a no-op in normal builds; see `dbopt_core::failpoint`).
pub(crate) fn fail_point(name: &str) -> Result<(), DbError> {
    dbopt_core::fail_point(name).map_err(|e| DbError::io(format!("at {name}"), e))
}
