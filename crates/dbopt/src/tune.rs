//! `tune`: measures the engine settings a user can reason about (threads, batch size, Parquet
//! filter pushdown, page-index pruning, join repartitioning) on the hottest shapes of a table's
//! logged workload, and picks the fastest; the caller may store the pick in `dbopt.toml`.
//!
//! Method, so the figures can be trusted on a shared, noisy machine:
//! - One factor at a time from the current configuration (the baseline): each trial changes one
//!   key to one value. Every trial runs the same queries on the table's active layout, in one
//!   process, in sessions sharing one runtime (footer cache, memory pool).
//! - A warm-up round first (not measured), then `rounds` rounds; within a round each query runs
//!   under every setting in turn, the order rotated each round, so drift in the machine (page
//!   cache, another process, clock speed) hits every setting alike. A query's
//!   time is its median over the rounds; a setting's time is the sum over queries.
//! - A value is chosen only when it beats the baseline by more than `margin`, so noise does not
//!   rewrite the configuration; a setting under which any query fails is never chosen. The
//!   chosen values are then measured together, and kept only if the combination also wins.
//! - Queries run unlogged: tuning is not workload.

use crate::{DbError, Workspace};
use dbopt_core::TableName;
use dbopt_engine::{EngineRuntime, EngineSettings};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// How `tune` measures.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Hottest logged query shapes to run.
    pub shapes: u64,
    /// Measured rounds (after one warm-up round).
    pub rounds: usize,
    /// Smallest improvement over the baseline that changes a setting (0.05 = 5%).
    pub margin: f64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        Self {
            shapes: 5,
            rounds: 3,
            margin: 0.05,
        }
    }
}

/// One configuration key set to one value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Knob {
    /// The configuration key (`dbopt config show` lists it).
    pub key: &'static str,
    /// Its value as the configuration writes it.
    pub value: String,
}

/// One measured setting.
#[derive(Debug, Clone, Serialize)]
pub struct Trial {
    /// What differs from the baseline (empty for the baseline itself).
    pub changes: Vec<Knob>,
    /// Sum over queries of the median latency, in milliseconds.
    pub total_ms: f64,
    /// `total_ms` over the baseline's (below 1 is faster).
    pub ratio: f64,
    /// Query runs that failed under this setting.
    pub errors: u64,
}

/// What `tune` measured and chose.
#[derive(Debug, Clone, Serialize)]
pub struct TuneReport {
    /// The table.
    pub table: String,
    /// The queries run, hottest first.
    pub queries: Vec<String>,
    /// The baseline: the tuned keys as configured now.
    pub baseline: Vec<Knob>,
    /// The baseline's measurement, then one per single change, then the combination.
    pub trials: Vec<Trial>,
    /// The values chosen (the baseline's where nothing beat it by the margin).
    pub chosen: Vec<Knob>,
    /// Chosen total over baseline total (1.0 when nothing changed).
    pub chosen_ratio: f64,
}

/// The tuned keys of `s`, as the configuration writes them.
fn knobs(s: &EngineSettings) -> Vec<Knob> {
    let knob = |key, value: String| Knob { key, value };
    vec![
        knob("threads", s.threads.to_string()),
        knob("batch_size", s.batch_size.to_string()),
        knob("pushdown_filters", s.pushdown_filters.to_string()),
        knob("page_index", s.page_index.to_string()),
        knob("repartition_joins", s.repartition_joins.to_string()),
    ]
}

/// `base` with `change` applied.
fn with_change(base: &EngineSettings, change: &Knob) -> EngineSettings {
    let mut s = base.clone();
    let flag = change.value == "true";
    match change.key {
        "threads" => s.threads = change.value.parse().unwrap_or(s.threads),
        "batch_size" => s.batch_size = change.value.parse().unwrap_or(s.batch_size),
        "pushdown_filters" => s.pushdown_filters = flag,
        "page_index" => s.page_index = flag,
        "repartition_joins" => s.repartition_joins = flag,
        _ => {}
    }
    s
}

/// The single changes worth measuring from `base`: thread counts around the cores, smaller and
/// larger batches, and each switch flipped.
pub fn single_changes(base: &EngineSettings) -> Vec<Knob> {
    let cores = EngineSettings {
        threads: 0,
        ..base.clone()
    }
    .effective_threads();
    let current = base.effective_threads();
    let mut threads: Vec<usize> = vec![1, cores, 2 * cores];
    threads.sort_unstable();
    threads.dedup();
    let mut changes: Vec<Knob> = threads
        .into_iter()
        .filter(|t| *t != current)
        .map(|t| Knob {
            key: "threads",
            value: t.to_string(),
        })
        .collect();
    for batch in [4096usize, 8192, 32768] {
        if batch != base.batch_size {
            changes.push(Knob {
                key: "batch_size",
                value: batch.to_string(),
            });
        }
    }
    for (key, on) in [
        ("pushdown_filters", base.pushdown_filters),
        ("page_index", base.page_index),
        ("repartition_joins", base.repartition_joins),
    ] {
        changes.push(Knob {
            key,
            value: (!on).to_string(),
        });
    }
    changes
}

/// The best value per key among `trials` that beat the baseline by more than `margin` with no
/// error (lowest ratio first).
pub fn pick(trials: &[Trial], margin: f64) -> Vec<Knob> {
    let mut best: BTreeMap<&'static str, (f64, Knob)> = BTreeMap::new();
    for t in trials {
        let [change] = t.changes.as_slice() else {
            continue;
        };
        if t.errors > 0 || t.ratio >= 1.0 - margin {
            continue;
        }
        let better = best.get(change.key).is_none_or(|(r, _)| t.ratio < *r);
        if better {
            best.insert(change.key, (t.ratio, change.clone()));
        }
    }
    best.into_values().map(|(_, k)| k).collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => f64::midpoint(xs[n / 2 - 1], xs[n / 2]),
    }
}

impl Workspace {
    /// Measures the tuned settings on `table`'s hottest logged shapes and chooses the fastest.
    pub async fn tune(
        &self,
        table: &TableName,
        options: &TuneOptions,
        progress: &dyn Fn(&str),
    ) -> Result<TuneReport, DbError> {
        self.require_table(table)?;
        let queries: Vec<String> = self
            .hottest_shapes(table, options.shapes, &BTreeMap::new())?
            .into_iter()
            .map(|s| s.sql)
            .collect();
        if queries.is_empty() {
            return Err(DbError::NoLoggedQueries {
                table: table.to_string(),
                window: String::new(),
            });
        }
        let base = self.engine_settings();
        let runtime = EngineRuntime::new(&base);
        let singles = single_changes(&base);
        let mut settings: Vec<Vec<Knob>> = vec![Vec::new()];
        settings.extend(singles.into_iter().map(|k| vec![k]));
        let mut trials = self
            .measure(
                table, &runtime, &base, &settings, &queries, options, progress,
            )
            .await?;
        let chosen_changes = pick(&trials, options.margin);
        let mut chosen_ratio = 1.0;
        let mut chosen = knobs(&base);
        if !chosen_changes.is_empty() {
            // The combination is measured against the baseline afresh, in the same rounds.
            let pair = vec![Vec::new(), chosen_changes.clone()];
            let again = self
                .measure(table, &runtime, &base, &pair, &queries, options, progress)
                .await?;
            let combined = again[1].clone();
            if combined.errors == 0 && combined.ratio < 1.0 - options.margin {
                chosen_ratio = combined.ratio;
                for change in &chosen_changes {
                    if let Some(k) = chosen.iter_mut().find(|k| k.key == change.key) {
                        k.value.clone_from(&change.value);
                    }
                }
            }
            trials.push(combined);
        }
        Ok(TuneReport {
            table: table.to_string(),
            queries,
            baseline: knobs(&base),
            trials,
            chosen,
            chosen_ratio,
        })
    }

    /// Runs `queries` under each of `settings` (changes from `base`): a warm-up round, then
    /// `options.rounds` interleaved rounds; one trial per setting, ratios against the first.
    #[allow(clippy::too_many_arguments)]
    async fn measure(
        &self,
        table: &TableName,
        runtime: &EngineRuntime,
        base: &EngineSettings,
        settings: &[Vec<Knob>],
        queries: &[String],
        options: &TuneOptions,
        progress: &dyn Fn(&str),
    ) -> Result<Vec<Trial>, DbError> {
        let mut sessions = Vec::new();
        for changes in settings {
            let s = changes.iter().fold(base.clone(), |s, k| with_change(&s, k));
            sessions.push(self.query_session_with(table, runtime, &s).await?);
        }
        // times[setting][query] = measured milliseconds per round.
        let mut times = vec![vec![Vec::new(); queries.len()]; settings.len()];
        let mut errors = vec![0u64; settings.len()];
        for round in 0..=options.rounds {
            progress(&format!(
                "round {round} of {} ({} settings x {} queries){}",
                options.rounds,
                settings.len(),
                queries.len(),
                if round == 0 { ", warm-up" } else { "" }
            ));
            for (q, sql) in queries.iter().enumerate() {
                // Each query runs under every setting in turn, starting one setting later each
                // round, so no setting is always first (cold) or last.
                for k in 0..sessions.len() {
                    let i = (k + round) % sessions.len();
                    let session = &sessions[i];
                    let started = Instant::now();
                    let ok = session.execute_unlogged(sql).await.is_ok();
                    let ms = started.elapsed().as_secs_f64() * 1000.0;
                    if round == 0 {
                        continue;
                    }
                    if ok {
                        times[i][q].push(ms);
                    } else {
                        errors[i] += 1;
                    }
                }
            }
        }
        let totals: Vec<f64> = times
            .into_iter()
            .map(|per_query| per_query.into_iter().map(median).sum())
            .collect();
        let baseline = totals[0].max(f64::MIN_POSITIVE);
        Ok(settings
            .iter()
            .zip(totals)
            .zip(errors)
            .map(|((changes, total_ms), errors)| Trial {
                changes: changes.clone(),
                total_ms,
                ratio: total_ms / baseline,
                errors,
            })
            .collect())
    }
}

/// Stores `chosen` in the TOML configuration file `path` (created when missing), keeping every
/// other key in it; written to a temporary file and renamed, so a crash leaves the old file.
/// The result is checked to resolve as a configuration before it replaces the old file.
pub fn write_config(path: &Path, chosen: &[Knob]) -> Result<(), DbError> {
    let mut table: toml::Table = match std::fs::read_to_string(path) {
        Ok(text) => text.parse().map_err(|e: toml::de::Error| {
            DbError::BadFile(format!(
                "{} is not valid TOML ({}): fix it or pass another --config",
                path.display(),
                dbopt_core::text::first_line(&e.to_string())
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(DbError::io(format!("reading {}", path.display()), e)),
    };
    for knob in chosen {
        let value = match knob.value.as_str() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            v => v
                .parse::<i64>()
                .map_or_else(|_| toml::Value::String(v.to_string()), toml::Value::Integer),
        };
        table.insert(knob.key.to_string(), value);
    }
    let text = toml::to_string(&table)
        .map_err(|e| DbError::Internal(format!("writing the configuration as TOML: {e}")))?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &text)
        .map_err(|e| DbError::io(format!("writing {}", tmp.display()), e))?;
    let check =
        dbopt_core::Config::resolve(Path::new("/nonexistent"), Some(&tmp), &BTreeMap::new(), &[]);
    if let Err(e) = check {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    std::fs::rename(&tmp, path).map_err(|e| DbError::io(format!("replacing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(key: &'static str, value: &str, ratio: f64, errors: u64) -> Trial {
        Trial {
            changes: vec![Knob {
                key,
                value: value.into(),
            }],
            total_ms: ratio * 100.0,
            ratio,
            errors,
        }
    }

    #[test]
    fn picks_the_best_value_per_key_beyond_the_margin_and_never_one_that_failed() {
        let trials = vec![
            trial("threads", "1", 1.4, 0),
            trial("threads", "4", 0.80, 0),
            trial("batch_size", "32768", 0.97, 0),
            trial("page_index", "false", 0.5, 1),
            trial("pushdown_filters", "false", 0.90, 0),
            trial("pushdown_filters", "true", 0.85, 0),
        ];
        let chosen = pick(&trials, 0.05);
        let got: Vec<(&str, &str)> = chosen.iter().map(|k| (k.key, k.value.as_str())).collect();
        assert_eq!(got, vec![("pushdown_filters", "true"), ("threads", "4")]);
    }

    #[test]
    fn single_changes_flip_each_switch_and_skip_the_current_values() {
        let base = EngineSettings {
            threads: 2,
            batch_size: 8192,
            ..EngineSettings::default()
        };
        let changes = single_changes(&base);
        assert!(!changes.iter().any(|k| k.key == "threads" && k.value == "2"));
        assert!(
            !changes
                .iter()
                .any(|k| k.key == "batch_size" && k.value == "8192")
        );
        assert!(
            changes
                .iter()
                .any(|k| k.key == "pushdown_filters" && k.value == "false")
        );
        let flipped = with_change(&base, &changes[changes.len() - 1]);
        assert!(!flipped.repartition_joins);
    }

    #[test]
    fn the_written_config_keeps_other_keys_and_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dbopt.toml");
        std::fs::write(&path, "alpha = 2.5\nthreads = 3\n").unwrap();
        let chosen = vec![
            Knob {
                key: "threads",
                value: "4".into(),
            },
            Knob {
                key: "pushdown_filters",
                value: "false".into(),
            },
        ];
        write_config(&path, &chosen).unwrap();
        let config = dbopt_core::Config::resolve(
            Path::new("/nonexistent"),
            Some(&path),
            &BTreeMap::new(),
            &[],
        )
        .unwrap();
        assert_eq!(config.threads(), 4);
        assert!(!config.settings().pushdown_filters);
        assert!(
            (config.settings().alpha - 2.5).abs() < 1e-9,
            "other keys kept"
        );
        std::fs::write(&path, "threads = [").unwrap();
        assert!(
            write_config(&path, &chosen).is_err(),
            "a broken file is not overwritten"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "threads = [");
    }
}
