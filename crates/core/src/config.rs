//! The resolved configuration: defaults < `dbopt.toml` (or `--config FILE`) < environment <
//! command-line flags. Every value remembers where it came from, for `dbopt config show`.

use crate::CoreError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The built-in default.
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Default => write!(f, "default"),
            ConfigSource::File(p) => write!(f, "file {}", p.display()),
            ConfigSource::Env(v) => write!(f, "env {v}"),
            ConfigSource::Flag(v) => write!(f, "flag {v}"),
        }
    }
}

/// One resolved value in text form with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigValue {
    /// The value as text.
    pub value: String,
    /// Where it came from.
    pub source: ConfigSource,
}

/// A configuration key: its name, short environment alias, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct ConfigKey {
    /// The key as written in dbopt.toml (`DBOPT_<KEY>` in the environment).
    pub name: &'static str,
    /// An extra environment variable accepted for the key (lower precedence than DBOPT_*).
    pub env_alias: Option<&'static str>,
    /// The default, as text.
    pub default: &'static str,
    /// What it controls.
    pub doc: &'static str,
}

/// Every configuration key dbopt knows, with defaults.
pub const KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "data_dir",
        env_alias: Some("DATA_DIR"),
        default: "data",
        doc: "directory holding every table's layouts: a local path, or s3://bucket/prefix/ (also gs://, az://)",
    },
    ConfigKey {
        name: "metadata_db",
        env_alias: Some("METADATA_DB"),
        default: "metadata.db",
        doc: "SQLite catalog file",
    },
    ConfigKey {
        name: "exploration_rate",
        env_alias: Some("EXPLORATION_RATE"),
        default: "0.2",
        doc: "epsilon-greedy: share of routed queries sent to a layout other than the best",
    },
    ConfigKey {
        name: "alpha",
        env_alias: Some("ALPHA"),
        default: "1.0",
        doc: "reward weight of the improvement against the baseline layout",
    },
    ConfigKey {
        name: "beta",
        env_alias: Some("BETA"),
        default: "0.1",
        doc: "reward weight of a layout's rewrite cost, amortized over the queries it served",
    },
    ConfigKey {
        name: "threads",
        env_alias: None,
        default: "0",
        doc: "DataFusion target partitions (0 = number of cores)",
    },
    ConfigKey {
        name: "memory_limit",
        env_alias: None,
        default: "2GiB",
        doc: "memory pool for queries and rewrites; sorts spill beyond it",
    },
    ConfigKey {
        name: "batch_size",
        env_alias: None,
        default: "8192",
        doc: "rows per Arrow batch",
    },
    ConfigKey {
        name: "max_partitions",
        env_alias: None,
        default: "256",
        doc: "most hive partitions a proposed layout may create",
    },
    ConfigKey {
        name: "min_partition_rows",
        env_alias: None,
        default: "100000",
        doc: "fewest average rows per partition a proposal may create",
    },
    ConfigKey {
        name: "partition_min_query_share",
        env_alias: None,
        default: "0.3",
        doc: "partition only on columns filtered by more than this share of queries",
    },
    ConfigKey {
        name: "sort_min_query_share",
        env_alias: None,
        default: "0.2",
        doc: "change the sort only for columns driven by more than this share of queries",
    },
    ConfigKey {
        name: "min_predicted_reduction",
        env_alias: None,
        default: "0.3",
        doc: "recommend a candidate only above this predicted scan reduction",
    },
    ConfigKey {
        name: "max_size_growth",
        env_alias: None,
        default: "0.25",
        doc: "recommend a candidate only if its predicted size grows the table by at most this fraction",
    },
    ConfigKey {
        name: "sample_rows",
        env_alias: None,
        default: "60000",
        doc: "rows of the table sample the what-if model lays out (the whole table when smaller)",
    },
    ConfigKey {
        name: "join_keys_seconds",
        env_alias: None,
        default: "120",
        doc: "seconds `propose` and `whatif` may spend running join build sides to price the filters joins carry into a scan (0: none)",
    },
    ConfigKey {
        name: "lookback_days",
        env_alias: Some("LOOKBACK_DAYS"),
        default: "7",
        doc: "days of an engine's query log that `import-queries` keeps (its --since default)",
    },
    ConfigKey {
        name: "file_price_bytes",
        env_alias: None,
        default: "262144",
        doc: "what-if price of opening a file, in bytes scanned (`dbopt calibrate --write` fits it)",
    },
    ConfigKey {
        name: "row_group_price_bytes",
        env_alias: None,
        default: "16384",
        doc: "what-if price of visiting a row group, in bytes scanned (`dbopt calibrate --write` fits it)",
    },
    ConfigKey {
        name: "page_price_bytes",
        env_alias: None,
        default: "1024",
        doc: "what-if price of decoding one column page, in bytes scanned",
    },
    ConfigKey {
        name: "lease_seconds",
        env_alias: None,
        default: "30",
        doc: "migration job lease length",
    },
    ConfigKey {
        name: "policy",
        env_alias: None,
        default: "thompson",
        doc: "routing policy: epsilon-greedy, ucb1 or thompson",
    },
    ConfigKey {
        name: "objective",
        env_alias: None,
        default: "bytes",
        doc: "what routing and evaluation optimize: bytes (scanned) or latency",
    },
    ConfigKey {
        name: "max_layouts",
        env_alias: None,
        default: "3",
        doc: "most ready layouts a table keeps besides the initial one",
    },
    ConfigKey {
        name: "min_canary_reduction",
        env_alias: None,
        default: "0.3",
        doc: "a canary promotes only above this measured bytes reduction",
    },
    ConfigKey {
        name: "canary_queries",
        env_alias: None,
        default: "10",
        doc: "most frequent logged query shapes a canary replays",
    },
    ConfigKey {
        name: "eval_window",
        env_alias: None,
        default: "1h",
        doc: "rolling window evaluate scores layouts over (e.g. 30m, 1h, 7d)",
    },
    ConfigKey {
        name: "gc_grace",
        env_alias: None,
        default: "5m",
        doc: "gc keeps a layout's files this long after it left service (e.g. 0s, 90s, 5m)",
    },
    ConfigKey {
        name: "min_samples",
        env_alias: None,
        default: "5",
        doc: "fewest queries a layout needs in a window to be scored",
    },
    ConfigKey {
        name: "rollback_after_windows",
        env_alias: None,
        default: "3",
        doc: "consecutive regressed windows after which autopilot rolls a layout back",
    },
    ConfigKey {
        name: "regression_margin",
        env_alias: None,
        default: "0.05",
        doc: "a window regresses when the layout is this much worse than the one it replaced",
    },
    ConfigKey {
        name: "max_payback_runs",
        env_alias: None,
        default: "20",
        doc: "autopilot rewrites only when a proposal pays back within this many workload runs",
    },
    ConfigKey {
        name: "statement_timeout",
        env_alias: None,
        default: "0",
        doc: "cancel a query running longer than this (e.g. 500ms, 30s, 5m); 0 = no limit",
    },
    ConfigKey {
        name: "metadata_cache",
        env_alias: None,
        default: "64MiB",
        doc: "bound of the cache of Parquet footers and page indexes that `serve` keeps hot",
    },
    ConfigKey {
        name: "cache_max_bytes",
        env_alias: None,
        default: "1GiB",
        doc: "bound of the column-chunk cache `serve` keeps in memory (counts against memory_limit; 0 = off)",
    },
    ConfigKey {
        name: "spill_dir",
        env_alias: None,
        default: "",
        doc: "where sorts and joins spill; must be a local file system (empty = DATA_DIR/_spill)",
    },
    ConfigKey {
        name: "ballista",
        env_alias: None,
        default: "",
        doc: "Ballista scheduler (host:port) that runs queries; empty = run them in this process",
    },
    ConfigKey {
        name: "pushdown_filters",
        env_alias: None,
        default: "true",
        doc: "evaluate filters while decoding Parquet, skipping the rows they reject (`dbopt tune` measures it)",
    },
    ConfigKey {
        name: "adaptive_pushdown",
        env_alias: None,
        default: "false",
        doc: "choose pushdown_filters per query shape and layout by measured latency (both tried three times, then the faster without its slowest run)",
    },
    ConfigKey {
        name: "page_index",
        env_alias: None,
        default: "true",
        doc: "read Parquet page indexes to skip pages inside row groups",
    },
    ConfigKey {
        name: "repartition_joins",
        env_alias: None,
        default: "true",
        doc: "hash-repartition both join inputs across the threads (false: collect the build side)",
    },
    ConfigKey {
        name: "sql_user",
        env_alias: None,
        default: "dbopt",
        doc: "user name the SQL endpoint (`serve --sql-addr`) asks for when a password is set",
    },
    ConfigKey {
        name: "sql_password",
        env_alias: None,
        default: "",
        doc: "password of the SQL endpoint (empty: none, allowed only on a loopback address)",
    },
    ConfigKey {
        name: "sql_tls_cert",
        env_alias: None,
        default: "",
        doc: "PEM certificate chain: the SQL endpoint offers TLS when it and sql_tls_key are set",
    },
    ConfigKey {
        name: "sql_tls_key",
        env_alias: None,
        default: "",
        doc: "PEM private key of sql_tls_cert",
    },
];

/// Every key's value parsed into its type, once, when the configuration is resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Directory holding every table's layouts.
    pub data_dir: PathBuf,
    /// SQLite catalog path.
    pub metadata_db: PathBuf,
    /// Epsilon-greedy: share of routed queries sent to a layout other than the best.
    pub exploration_rate: f64,
    /// Reward weight of the improvement (ALPHA).
    pub alpha: f64,
    /// Reward weight of the amortized rewrite cost (BETA).
    pub beta: f64,
    /// DataFusion target partitions (0 = cores).
    pub threads: usize,
    /// Memory pool size in bytes.
    pub memory_limit: u64,
    /// Rows per Arrow batch (positive).
    pub batch_size: usize,
    /// Most hive partitions a proposal may create.
    pub max_partitions: u64,
    /// Fewest average rows per partition.
    pub min_partition_rows: u64,
    /// Partition threshold (share of queries).
    pub partition_min_query_share: f64,
    /// Sort threshold (share of queries).
    pub sort_min_query_share: f64,
    /// Recommendation threshold (predicted reduction).
    pub min_predicted_reduction: f64,
    /// Most predicted growth of the table's size a recommended candidate may bring.
    pub max_size_growth: f64,
    /// Days of an engine's query log `import-queries` keeps by default.
    pub lookback_days: u64,
    /// Rows of the what-if model's table sample.
    pub sample_rows: u64,
    /// Seconds spent running join build sides for the what-if model, per `propose`/`whatif`.
    pub join_keys_seconds: u64,
    /// What-if prices in byte-equivalents: file, row group, page.
    pub prices: [f64; 3],
    /// Migration lease length in seconds.
    pub lease_seconds: u64,
    /// The routing policy name (the route crate owns the names and checks it).
    pub policy: String,
    /// The objective name (the evaluate crate owns the names and checks it).
    pub objective: String,
    /// Most ready layouts besides the initial one.
    pub max_layouts: u64,
    /// Bytes reduction a canary needs to promote.
    pub min_canary_reduction: f64,
    /// Query shapes a canary replays.
    pub canary_queries: u64,
    /// The rolling evaluation window in milliseconds (positive).
    pub eval_window_ms: i64,
    /// How long gc keeps a layout's files after it left service, in milliseconds.
    pub gc_grace_ms: i64,
    /// Fewest queries in a window to score a layout.
    pub min_samples: u64,
    /// Regressed windows before an automatic rollback.
    pub rollback_after_windows: u64,
    /// How much worse than its predecessor a layout may be before a window counts as regressed.
    pub regression_margin: f64,
    /// Payback horizon of autopilot's rewrites, in workload runs.
    pub max_payback_runs: f64,
    /// Longest a query may run before it is cancelled (None = no limit).
    pub statement_timeout: Option<std::time::Duration>,
    /// Bound of the Parquet footer and page-index cache, in bytes.
    pub metadata_cache: u64,
    /// Bound of the server's column-chunk cache, in bytes (0 = off).
    pub cache_max_bytes: u64,
    /// Where operators spill (None = DATA_DIR/_spill).
    pub spill_dir: Option<PathBuf>,
    /// Parquet filter pushdown into the decoder.
    pub pushdown_filters: bool,
    /// Pushdown chosen per query shape and layout by measured latency.
    pub adaptive_pushdown: bool,
    /// The Ballista scheduler queries run on (None: in this process).
    pub ballista: Option<String>,
    /// Parquet page-index pruning.
    pub page_index: bool,
    /// Hash-repartitioned joins.
    pub repartition_joins: bool,
    /// The SQL endpoint's user name.
    pub sql_user: String,
    /// The SQL endpoint's password (None: no password).
    pub sql_password: Option<String>,
    /// The SQL endpoint's TLS certificate chain (PEM), if any.
    pub sql_tls_cert: Option<PathBuf>,
    /// The SQL endpoint's TLS private key (PEM), if any.
    pub sql_tls_key: Option<PathBuf>,
}

/// The resolved configuration: each value in text with its source (for `config show`) and
/// all of them parsed once into [`Settings`].
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, ConfigValue>,
    settings: Settings,
}

impl Config {
    /// Resolves the configuration. `file` is `--config FILE` if given; otherwise `dbopt.toml`
    /// in `cwd` is read when present. `env` is the process environment; `flags` are the
    /// command-line overrides as (key, value, flag spelling).
    pub fn resolve(
        cwd: &Path,
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        flags: &[(&str, String, &str)],
    ) -> Result<Config, CoreError> {
        let mut values = default_values();
        let file_path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => Some(cwd.join("dbopt.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = file_path {
            for (key, value) in read_config_file(&path)? {
                values.insert(
                    key,
                    ConfigValue {
                        value,
                        source: ConfigSource::File(path.clone()),
                    },
                );
            }
        }
        apply_env(&mut values, env);
        apply_flags(&mut values, flags)?;
        Config::from_values(values)
    }

    /// Resolved defaults only (tests and library users that pass paths explicitly).
    pub fn with_dirs(data_dir: &Path, metadata_db: &Path) -> Config {
        let flags = [
            ("data_dir", data_dir.display().to_string(), "with_dirs"),
            (
                "metadata_db",
                metadata_db.display().to_string(),
                "with_dirs",
            ),
        ];
        Config::resolve(Path::new("/nonexistent"), None, &BTreeMap::new(), &flags)
            .expect("the built-in defaults always parse")
    }

    /// This configuration with `data_dir` and `metadata_db` replaced (set by `flag`).
    pub fn with_paths(&self, data_dir: &Path, metadata_db: &Path, flag: &str) -> Config {
        let mut config = self.clone();
        for (key, path) in [("data_dir", data_dir), ("metadata_db", metadata_db)] {
            config.values.insert(
                key,
                ConfigValue {
                    value: path.display().to_string(),
                    source: ConfigSource::Flag(flag.to_string()),
                },
            );
        }
        config.settings.data_dir = data_dir.to_path_buf();
        config.settings.metadata_db = metadata_db.to_path_buf();
        config
    }

    /// This configuration with `flags` (key, value, flag name) applied on top, as the
    /// command line's flags are; a bad value is the same error a flag gets.
    pub fn with_flags(&self, flags: &[(&str, String, &str)]) -> Result<Config, CoreError> {
        let mut values = self.values.clone();
        apply_flags(&mut values, flags)?;
        Config::from_values(values)
    }

    /// Every key with its resolved value and source, in key order.
    pub fn entries(&self) -> Vec<(&'static ConfigKey, &ConfigValue)> {
        KEYS.iter().map(|k| (k, &self.values[k.name])).collect()
    }

    /// The resolved value of `key` with its source.
    pub fn get(&self, key: &str) -> Option<&ConfigValue> {
        self.values.get(key)
    }

    /// Every value, typed.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn from_values(values: BTreeMap<&'static str, ConfigValue>) -> Result<Config, CoreError> {
        let p = Parser { values: &values };
        let settings = Settings {
            data_dir: p.data_location("data_dir")?,
            metadata_db: p.local_path("metadata_db")?,
            exploration_rate: p.fraction("exploration_rate")?,
            alpha: p.non_negative("alpha")?,
            beta: p.non_negative("beta")?,
            threads: p.count("threads")? as usize,
            memory_limit: p.bytes("memory_limit")?,
            batch_size: p.positive("batch_size")? as usize,
            max_partitions: p.count("max_partitions")?,
            min_partition_rows: p.count("min_partition_rows")?,
            partition_min_query_share: p.number("partition_min_query_share")?,
            sort_min_query_share: p.number("sort_min_query_share")?,
            min_predicted_reduction: p.number("min_predicted_reduction")?,
            max_size_growth: p.non_negative("max_size_growth")?,
            lookback_days: p.positive("lookback_days")?,
            sample_rows: p.positive("sample_rows")?,
            join_keys_seconds: p.count("join_keys_seconds")?,
            prices: [
                p.non_negative("file_price_bytes")?,
                p.non_negative("row_group_price_bytes")?,
                p.non_negative("page_price_bytes")?,
            ],
            lease_seconds: p.count("lease_seconds")?,
            policy: p.text("policy").to_string(),
            objective: p.text("objective").to_string(),
            max_layouts: p.count("max_layouts")?,
            min_canary_reduction: p.number("min_canary_reduction")?,
            canary_queries: p.count("canary_queries")?,
            eval_window_ms: p.window("eval_window")?,
            gc_grace_ms: p.duration("gc_grace")?,
            min_samples: p.count("min_samples")?,
            rollback_after_windows: p.count("rollback_after_windows")?,
            regression_margin: p.non_negative("regression_margin")?,
            max_payback_runs: p.non_negative("max_payback_runs")?,
            statement_timeout: p.timeout("statement_timeout")?,
            metadata_cache: p.bytes("metadata_cache")?,
            cache_max_bytes: p.bytes("cache_max_bytes")?,
            spill_dir: p.optional_path("spill_dir"),
            pushdown_filters: p.flag("pushdown_filters")?,
            adaptive_pushdown: p.flag("adaptive_pushdown")?,
            ballista: Some(p.text("ballista").trim().to_string()).filter(|s| !s.is_empty()),
            page_index: p.flag("page_index")?,
            repartition_joins: p.flag("repartition_joins")?,
            sql_user: p.text("sql_user").to_string(),
            sql_password: Some(p.text("sql_password").to_string()).filter(|s| !s.is_empty()),
            sql_tls_cert: p.optional_path("sql_tls_cert"),
            sql_tls_key: p.optional_path("sql_tls_key"),
        };
        Ok(Config { values, settings })
    }

    /// Longest a query may run before it is cancelled (None = no limit).
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        self.settings.statement_timeout
    }
    /// Directory holding every table's layouts.
    pub fn data_dir(&self) -> PathBuf {
        self.settings.data_dir.clone()
    }
    /// SQLite catalog path.
    pub fn metadata_db(&self) -> PathBuf {
        self.settings.metadata_db.clone()
    }
    /// Epsilon-greedy: share of routed queries sent to a layout other than the best.
    pub fn exploration_rate(&self) -> f64 {
        self.settings.exploration_rate
    }
    /// Reward weight of the improvement (ALPHA).
    pub fn alpha(&self) -> f64 {
        self.settings.alpha
    }
    /// Reward weight of the amortized rewrite cost (BETA).
    pub fn beta(&self) -> f64 {
        self.settings.beta
    }
    /// DataFusion target partitions (0 = cores).
    pub fn threads(&self) -> usize {
        self.settings.threads
    }
    /// Memory pool size in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.settings.memory_limit
    }
    /// Rows per Arrow batch.
    pub fn batch_size(&self) -> usize {
        self.settings.batch_size
    }
    /// Most hive partitions a proposal may create.
    pub fn max_partitions(&self) -> u64 {
        self.settings.max_partitions
    }
    /// Fewest average rows per partition.
    pub fn min_partition_rows(&self) -> u64 {
        self.settings.min_partition_rows
    }
    /// Partition threshold (share of queries).
    pub fn partition_min_query_share(&self) -> f64 {
        self.settings.partition_min_query_share
    }
    /// Sort threshold (share of queries).
    pub fn sort_min_query_share(&self) -> f64 {
        self.settings.sort_min_query_share
    }
    /// Recommendation threshold (predicted reduction).
    pub fn min_predicted_reduction(&self) -> f64 {
        self.settings.min_predicted_reduction
    }
    /// Most predicted growth of the table's size a recommended candidate may bring.
    pub fn max_size_growth(&self) -> f64 {
        self.settings.max_size_growth
    }
    /// Rows of the table sample the what-if model lays out.
    pub fn sample_rows(&self) -> u64 {
        self.settings.sample_rows
    }
    /// Time `propose` and `whatif` may spend running join build sides (zero: none).
    pub fn join_keys_budget(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.settings.join_keys_seconds)
    }
    /// Days of an engine's query log `import-queries` keeps by default (`--since`).
    pub fn lookback_days(&self) -> u64 {
        self.settings.lookback_days
    }
    /// The what-if model's prices in bytes: opening a file, visiting a row group, decoding a
    /// page (`dbopt calibrate` fits the first two per machine).
    pub fn price_bytes(&self) -> [f64; 3] {
        self.settings.prices
    }
    /// Migration lease length in seconds.
    pub fn lease_seconds(&self) -> u64 {
        self.settings.lease_seconds
    }
    /// The routing policy name (checked by the facade against the route crate's names).
    pub fn policy(&self) -> &str {
        &self.settings.policy
    }
    /// The objective name (checked by the facade).
    pub fn objective(&self) -> &str {
        &self.settings.objective
    }
    /// The rolling evaluation window, ms (positive).
    pub fn eval_window_ms(&self) -> i64 {
        self.settings.eval_window_ms
    }
    /// How long gc keeps a layout's files after it left service, ms.
    pub fn gc_grace_ms(&self) -> i64 {
        self.settings.gc_grace_ms
    }
    /// Most ready layouts besides the initial one.
    pub fn max_layouts(&self) -> u64 {
        self.settings.max_layouts
    }
    /// Bytes reduction a canary needs to promote.
    pub fn min_canary_reduction(&self) -> f64 {
        self.settings.min_canary_reduction
    }
    /// Query shapes a canary replays.
    pub fn canary_queries(&self) -> u64 {
        self.settings.canary_queries
    }
    /// Fewest queries in a window to score a layout.
    pub fn min_samples(&self) -> u64 {
        self.settings.min_samples
    }
    /// Regressed windows before an automatic rollback.
    pub fn rollback_after_windows(&self) -> u64 {
        self.settings.rollback_after_windows
    }
    /// How much worse than its predecessor a layout may be before a window counts as regressed.
    pub fn regression_margin(&self) -> f64 {
        self.settings.regression_margin
    }
    /// Payback horizon of autopilot's rewrites, in workload runs.
    pub fn max_payback_runs(&self) -> f64 {
        self.settings.max_payback_runs
    }
}

/// Every key at its built-in default.
fn default_values() -> BTreeMap<&'static str, ConfigValue> {
    KEYS.iter()
        .map(|k| {
            (
                k.name,
                ConfigValue {
                    value: k.default.to_string(),
                    source: ConfigSource::Default,
                },
            )
        })
        .collect()
}

/// Overrides from `DBOPT_<KEY>` (or the key's shorter alias) in `env`.
fn apply_env(values: &mut BTreeMap<&'static str, ConfigValue>, env: &BTreeMap<String, String>) {
    for key in KEYS {
        let prefixed = format!("DBOPT_{}", key.name.to_uppercase());
        let hit = env
            .get(&prefixed)
            .map(|v| (prefixed.clone(), v))
            .or_else(|| {
                key.env_alias
                    .and_then(|a| env.get(a).map(|v| (a.to_string(), v)))
            });
        if let Some((var, value)) = hit {
            values.insert(
                key.name,
                ConfigValue {
                    value: value.clone(),
                    source: ConfigSource::Env(var),
                },
            );
        }
    }
}

/// Overrides from command-line flags; an unknown key is an error.
fn apply_flags(
    values: &mut BTreeMap<&'static str, ConfigValue>,
    flags: &[(&str, String, &str)],
) -> Result<(), CoreError> {
    for (key, value, flag) in flags {
        let known =
            KEYS.iter()
                .find(|k| k.name == *key)
                .ok_or_else(|| CoreError::InvalidConfig {
                    key: key.to_string(),
                    source_name: flag.to_string(),
                    message: "unknown configuration key".into(),
                })?;
        values.insert(
            known.name,
            ConfigValue {
                value: value.clone(),
                source: ConfigSource::Flag(flag.to_string()),
            },
        );
    }
    Ok(())
}

/// URL schemes `DATA_DIR` may be given in (object storage through the `object_store` crate,
/// or `file://` for a local path).
const DATA_SCHEMES: &[&str] = &["s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "file"];

/// Parses one key's text into its type; errors name the key, its source and the value.
struct Parser<'a> {
    values: &'a BTreeMap<&'static str, ConfigValue>,
}

impl Parser<'_> {
    fn text(&self, key: &str) -> &str {
        self.values[key].value.trim()
    }

    /// A path on this machine: a URL (`s3://...`) is refused rather than taken as a file name.
    fn local_path(&self, key: &str) -> Result<PathBuf, CoreError> {
        let text = self.text(key);
        if text.contains("://") {
            return Err(self.invalid(
                key,
                "is a URL, and this must be a local path: the catalog is a SQLite file on local disk (DATA_DIR may be on object storage)",
            ));
        }
        Ok(PathBuf::from(text))
    }

    /// A local path or an object-storage URL (`s3://`, `gs://`, `az://`, `file://`, kept as
    /// written); any other URL is refused.
    fn data_location(&self, key: &str) -> Result<PathBuf, CoreError> {
        let text = self.text(key);
        if let Some((scheme, _)) = text.split_once("://")
            && !DATA_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
        {
            return Err(self.invalid(
                key,
                "is a URL of a kind dbopt cannot store layouts in: use a local path or s3://, gs://, az:// or file://",
            ));
        }
        Ok(PathBuf::from(text))
    }

    fn optional_path(&self, key: &str) -> Option<PathBuf> {
        Some(self.text(key))
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }

    fn invalid(&self, key: &str, message: &str) -> CoreError {
        CoreError::InvalidConfig {
            key: key.to_string(),
            source_name: self.values[key].source.to_string(),
            message: format!("'{}' {message}", self.values[key].value),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, CoreError> {
        match self.text(key).to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.invalid(key, "is not true or false")),
        }
    }

    fn number(&self, key: &str) -> Result<f64, CoreError> {
        self.text(key)
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.invalid(key, "is not a number"))
    }

    fn non_negative(&self, key: &str) -> Result<f64, CoreError> {
        let x = self.number(key)?;
        if x < 0.0 {
            return Err(self.invalid(key, "must not be negative"));
        }
        Ok(x)
    }

    fn fraction(&self, key: &str) -> Result<f64, CoreError> {
        let x = self.number(key)?;
        if !(0.0..=1.0).contains(&x) {
            return Err(self.invalid(key, "must be between 0 and 1"));
        }
        Ok(x)
    }

    fn count(&self, key: &str) -> Result<u64, CoreError> {
        self.text(key)
            .parse::<u64>()
            .map_err(|_| self.invalid(key, "is not a non-negative whole number"))
    }

    fn positive(&self, key: &str) -> Result<u64, CoreError> {
        match self.count(key)? {
            0 => Err(self.invalid(key, "must be positive")),
            n => Ok(n),
        }
    }

    fn bytes(&self, key: &str) -> Result<u64, CoreError> {
        parse_bytes(self.text(key))
            .ok_or_else(|| self.invalid(key, "is not a byte size (e.g. 512MiB, 2GiB, 1000000)"))
    }

    fn duration(&self, key: &str) -> Result<i64, CoreError> {
        parse_duration_ms(self.text(key)).ok_or_else(|| {
            self.invalid(
                key,
                "is not a duration: use a number with s, m, h, d or w, e.g. 30m or 7d",
            )
        })
    }

    fn window(&self, key: &str) -> Result<i64, CoreError> {
        match self.duration(key)? {
            0 => Err(self.invalid(key, "must be longer than 0s, e.g. 1h")),
            ms => Ok(ms),
        }
    }

    fn timeout(&self, key: &str) -> Result<Option<std::time::Duration>, CoreError> {
        parse_timeout(self.text(key)).ok_or_else(|| {
            self.invalid(
                key,
                "is not a duration up to a year (e.g. 500ms, 30s, 5m, 1h; 0 = no limit)",
            )
        })
    }
}

/// Parses `30s`, `5m`, `1h`, `7d`, `2w` into milliseconds (None when it does not parse or
/// overflows).
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let unit_at = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(unit_at);
    let n: i64 = num.parse().ok()?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

/// Parses `512MiB`, `2GiB`, `1.5GB`, `1000` into bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = num * mult;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as u64)
}

/// Parses a timeout: `500ms`, `30s`, `5m`, `1h`, or a plain number of seconds (`2.5`);
/// `0` means no limit (`Some(None)`). Negative, non-finite or over a year is `None`.
pub fn parse_timeout(text: &str) -> Option<Option<std::time::Duration>> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num.parse().ok()?;
    let secs = num
        * match unit.trim() {
            "" | "s" => 1.0,
            "ms" => 1e-3,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
    if !(secs.is_finite() && (0.0..=365.0 * 86_400.0).contains(&secs)) {
        return None;
    }
    Some((secs > 0.0).then(|| std::time::Duration::from_secs_f64(secs)))
}

fn read_config_file(path: &Path) -> Result<Vec<(&'static str, String)>, CoreError> {
    let err = |message: String| CoreError::ConfigFile {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let known = KEYS.iter().find(|k| k.name == key).ok_or_else(|| {
            let names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            err(format!(
                "unknown key '{key}' (known keys: {})",
                names.join(", ")
            ))
        })?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => return Err(err(format!("key '{key}' has unsupported value {other}"))),
        };
        out.push((known.name, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn precedence_default_file_env_flag() {
        let dir = std::env::temp_dir().join(format!("dbopt-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("dbopt.toml"),
            "data_dir = \"from_file\"\nalpha = 2.5\nbeta = 3\nthreads = 3\n",
        )
        .unwrap();

        let c = Config::resolve(&dir, None, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(c.data_dir(), PathBuf::from("from_file"));
        assert_eq!(c.get("metadata_db").unwrap().source, ConfigSource::Default);
        assert_eq!(c.alpha(), 2.5);

        let e = env(&[("DATA_DIR", "from_env"), ("DBOPT_BETA", "7"), ("BETA", "9")]);
        let c = Config::resolve(&dir, None, &e, &[]).unwrap();
        assert_eq!(c.data_dir(), PathBuf::from("from_env"));
        assert_eq!(c.beta(), 7.0, "DBOPT_ beats the short alias");
        assert_eq!(c.threads(), 3, "file value survives where env is silent");

        let flags = [("data_dir", "from_flag".to_string(), "--data-dir")];
        let c = Config::resolve(&dir, None, &e, &flags).unwrap();
        assert_eq!(c.data_dir(), PathBuf::from("from_flag"));
        assert_eq!(
            c.get("data_dir").unwrap().source,
            ConfigSource::Flag("--data-dir".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_name_key_and_source() {
        let e = env(&[("EXPLORATION_RATE", "lots")]);
        let err = Config::resolve(Path::new("/nonexistent"), None, &e, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exploration_rate") && err.contains("EXPLORATION_RATE"),
            "{err}"
        );
        let e = env(&[("DBOPT_MEMORY_LIMIT", "12 parsecs")]);
        assert!(Config::resolve(Path::new("/nonexistent"), None, &e, &[]).is_err());
        // DATA_DIR may be on object storage, kept as written; the catalog may not.
        let e = env(&[("DATA_DIR", "s3://lake/dbopt/")]);
        let c = Config::resolve(Path::new("/nonexistent"), None, &e, &[]).unwrap();
        assert_eq!(c.data_dir().to_str(), Some("s3://lake/dbopt/"));
        let e = env(&[("DATA_DIR", "http://lake/dbopt")]);
        let err = Config::resolve(Path::new("/nonexistent"), None, &e, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data_dir") && err.contains("cannot store layouts"),
            "{err}"
        );
        let e = env(&[("METADATA_DB", "s3://lake/metadata.db")]);
        let err = Config::resolve(Path::new("/nonexistent"), None, &e, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("metadata_db") && err.contains("is a URL"),
            "{err}"
        );
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = std::env::temp_dir().join(format!("dbopt-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("x.toml");
        std::fs::write(&file, "data_dri = \"oops\"\n").unwrap();
        let err = Config::resolve(&dir, Some(&file), &BTreeMap::new(), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_dri"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn settings_are_typed_once() {
        let flags = [
            ("eval_window", "30m".to_string(), "--eval-window"),
            ("gc_grace", "0s".to_string(), "--gc-grace"),
            ("memory_limit", "2GiB".to_string(), "--memory-limit"),
        ];
        let c = Config::resolve(Path::new("/nonexistent"), None, &BTreeMap::new(), &flags).unwrap();
        let s = c.settings();
        assert_eq!(s.eval_window_ms, 30 * 60_000);
        assert_eq!(s.gc_grace_ms, 0);
        assert_eq!(s.memory_limit, 2 << 30);
        assert_eq!(s.policy, "thompson");
        let moved = c.with_paths(Path::new("d"), Path::new("m.db"), "--data-dir");
        assert_eq!(moved.settings().data_dir, PathBuf::from("d"));
        assert_eq!(moved.metadata_db(), PathBuf::from("m.db"));
        for (key, value) in [
            ("gc_grace", "5 minutes"),
            ("eval_window", "0h"),
            ("batch_size", "0"),
        ] {
            let flags = [(key, value.to_string(), "--x")];
            let err = Config::resolve(Path::new("/nonexistent"), None, &BTreeMap::new(), &flags)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90s"), Some(90_000));
        assert_eq!(parse_duration_ms(" 2w "), Some(14 * 86_400_000));
        for bad in ["", "5", "m", "5 m", "-1h", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("2GiB"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("512 MiB"), Some(512 * 1024 * 1024));
        assert_eq!(parse_bytes("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_bytes("lots"), None);
    }

    #[test]
    fn statement_timeouts() {
        use std::time::Duration;
        assert_eq!(parse_timeout("0"), Some(None));
        assert_eq!(
            parse_timeout("500ms"),
            Some(Some(Duration::from_millis(500)))
        );
        assert_eq!(
            parse_timeout("2.5"),
            Some(Some(Duration::from_millis(2500)))
        );
        assert_eq!(parse_timeout("5m"), Some(Some(Duration::from_secs(300))));
        for bad in ["", "-1s", "1e400", "soon", "99999999999h", "NaN"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
        let flags = [(
            "statement_timeout",
            "forever".to_string(),
            "--statement-timeout",
        )];
        let err = Config::resolve(Path::new("/nonexistent"), None, &BTreeMap::new(), &flags)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("statement_timeout") && err.contains("--statement-timeout"),
            "{err}"
        );
    }
}
