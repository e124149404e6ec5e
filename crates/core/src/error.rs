//! Errors raised by the core vocabulary (names, specs, configuration).

/// An error in a name, a layout spec or the configuration.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// A table name that does not match `[A-Za-z_][A-Za-z0-9_]{0,63}`.
    #[error(
        "invalid table name '{0}': use 1 to 64 letters, digits or underscores, not starting with a digit"
    )]
    InvalidTableName(String),
    /// A layout spec that cannot be built as asked.
    #[error("invalid layout spec: {0}")]
    InvalidSpec(String),
    /// A configuration value that does not parse.
    #[error("invalid configuration value for {key} from {source_name}: {message}")]
    InvalidConfig {
        /// The configuration key.
        key: String,
        /// Where the value came from.
        source_name: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration file that cannot be read or parsed.
    #[error("cannot read config file {path}: {message}")]
    ConfigFile {
        /// The file.
        path: String,
        /// Why it failed.
        message: String,
    },
    /// A manifest that cannot be parsed.
    #[error("corrupt layout manifest {path}: {message}")]
    CorruptManifest {
        /// The manifest file.
        path: String,
        /// Why it failed.
        message: String,
    },
}
