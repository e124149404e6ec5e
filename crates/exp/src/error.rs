//! What can go wrong with a parameter set or an experiment store.

/// What can go wrong with a parameter set or a store; each message names the problem and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ExpError {
    /// The parameter set is not a JSON object.
    #[error(
        "the parameter set is {found}, not a JSON object: write the parameters as {{\"name\": value, ...}}"
    )]
    NotAnObject {
        /// What it is instead ("an array", "a string", ...).
        found: &'static str,
    },
    /// An integer that a double cannot hold exactly.
    #[error(
        "parameter `{key}`: integer {value} is beyond 2^53 and would not hash exactly; write it as a string"
    )]
    IntegerTooLarge {
        /// Where the integer is (`a.b[2]`).
        key: String,
        /// The integer as written.
        value: String,
    },
    /// A NaN or infinite number, which JSON cannot write.
    #[error(
        "parameter `{key}`: number {value} is not finite and has no JSON form; write it as a string"
    )]
    NonFinite {
        /// Where the number is (`a.b[2]`).
        key: String,
        /// The number (`NaN`, `inf`, `-inf`).
        value: String,
    },
    /// The `seed` is not a non-negative integer.
    #[error(
        "seed {value} is not a non-negative integer below 2^64: write it as a whole number, e.g. \"seed\": 42"
    )]
    BadSeed {
        /// The seed as JSON text.
        value: String,
    },
    /// The directory exists and is not an experiment store.
    #[error(
        "{0} is not an experiment store (no _dbopt_exp.json in it): give a store's base directory, or a new or empty one"
    )]
    NotAStore(String),
    /// A creation setting differs from the store's.
    #[error(
        "the store {base} was created with {setting} {was:?}; it cannot change to {now:?}: leave {setting} out or use another store"
    )]
    SettingChanged {
        /// The store.
        base: String,
        /// The flag.
        setting: String,
        /// The store's value.
        was: String,
        /// The value asked for.
        now: String,
    },
    /// A partition key the store reserves.
    #[error(
        "--partition-by {0:?}: grid_id and seed are the store's own keys; partition by parameters only"
    )]
    BadPartitionKey(String),
    /// A grid id length out of range.
    #[error("--id-chars {0}: a grid id has 1 to 64 hex characters")]
    BadIdChars(usize),
    /// A run's parameters lack a partition-by key.
    #[error(
        "the parameters have no `{key}`, which the store is partitioned by: add it to every run's parameters"
    )]
    MissingPartitionKey {
        /// The key.
        key: String,
    },
    /// A partition value that cannot be a directory name.
    #[error(
        "parameter `{key}` = {value:?} cannot be a partition directory: partition by parameters whose values are letters, digits, '.', '_', '-' or '+'"
    )]
    BadPartitionValue {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A grid's params.json that does not hash to its id.
    #[error(
        "{path} does not hold the parameters of grid {id}: it was edited; restore it or remove the grid's directories"
    )]
    ParamsConflict {
        /// The file.
        path: String,
        /// The grid id.
        id: String,
    },
    /// Every prefix of the hash is taken by another parameter set (a SHA-256 collision).
    #[error("every id of hash {0} is taken by other parameters: the store is damaged")]
    FullHashCollision(String),
    /// A data column named like a parameter or a hive key.
    #[error(
        "{kind} column `{column}` is also a parameter or partition key: rename it (the views join the grid's parameters in beside the columns)"
    )]
    ColumnIsParameter {
        /// events or seeds.
        kind: &'static str,
        /// The column.
        column: String,
    },
    /// A parameter named like a data column or a hive key.
    #[error(
        "parameter `{0}` is also a column of the store's events or seeds: rename the parameter"
    )]
    ParameterIsColumn(String),
    /// A data column whose type differs from earlier runs'.
    #[error(
        "{kind} column `{column}` was {was} in earlier runs and is {now} now: write it with the same type in every run"
    )]
    ColumnTypeConflict {
        /// events or seeds.
        kind: &'static str,
        /// The column.
        column: String,
        /// The store's type.
        was: String,
        /// This run's type.
        now: String,
    },
    /// A parameter whose type differs from earlier grids'.
    #[error(
        "parameter `{key}` was {was} in earlier grids and is {now} now: give it the same type in every grid"
    )]
    ParamTypeConflict {
        /// The key.
        key: String,
        /// The store's type.
        was: String,
        /// This grid's type.
        now: String,
    },
    /// A value that does not convert to its column's type.
    #[error("column `{column}`: {message}")]
    BadValue {
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
    /// A store file that cannot be read as written.
    #[error("{path} is damaged ({message}): restore it from a copy or remove the store")]
    Corrupt {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ExpError {
    /// True when the input (parameters, files, flags, a store edited by hand) is at fault,
    /// false when the machine is (an IO error).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, ExpError::Io { .. })
    }
}
