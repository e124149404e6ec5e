//! `workload-sql`: a generated workload (events or TPC-H) as SQL text without running it, so the same queries
//! can be replayed elsewhere (the benchmark runs them on DuckDB too) or split into a training
//! set and a held-out test set by template.

use crate::{DbError, Workspace};
use dbopt_core::TableName;
use dbopt_data::tpch_params::{TpchMix, TpchWorkload};
use dbopt_data::workload::{EventsDomain, EventsWorkload, GeneratedQuery, template_names};

/// Which generator the queries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadSource {
    /// The events workload (over the events table and its customers dimension).
    Events,
    /// The 22 TPC-H templates drawn by `mix` (over the generated TPC-H tables).
    Tpch(TpchMix),
}

/// Which generated queries to emit.
#[derive(Debug, Clone)]
pub struct WorkloadSqlOptions {
    /// The generator.
    pub source: WorkloadSource,
    /// The events table the queries target (its row count sizes the parameter domains).
    pub table: TableName,
    /// The customers table joins go to.
    pub customers_table: TableName,
    /// How many queries.
    pub num_queries: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Emit only these templates (empty: all).
    pub only_templates: Vec<String>,
    /// Never emit these templates.
    pub exclude_templates: Vec<String>,
}

/// Template names of a generator (`q1`..`q22` for TPC-H).
fn known_templates(source: WorkloadSource) -> Vec<String> {
    match source {
        WorkloadSource::Events => template_names()
            .iter()
            .map(std::string::ToString::to_string)
            .collect(),
        WorkloadSource::Tpch(_) => (1..=22).map(|n| format!("q{n}")).collect(),
    }
}

/// Checks template names against the generator's list.
pub(crate) fn check_templates(names: &[String], known: &[String]) -> Result<(), DbError> {
    match names.iter().find(|n| !known.contains(n)) {
        Some(bad) => Err(DbError::UnknownTemplate {
            name: bad.clone(),
            known: known.join(", "),
        }),
        None => Ok(()),
    }
}

impl Workspace {
    /// Draws `num_queries` generated queries that pass the template filters and hands each
    /// to `emit` as it is drawn (nothing is collected, so any count runs in flat memory).
    pub fn workload_sql<E: From<DbError>>(
        &self,
        options: &WorkloadSqlOptions,
        mut emit: impl FnMut(GeneratedQuery) -> Result<(), E>,
    ) -> Result<(), E> {
        let known = known_templates(options.source);
        check_templates(&options.only_templates, &known)?;
        check_templates(&options.exclude_templates, &known)?;
        let allowed = |t: &str| {
            (options.only_templates.is_empty() || options.only_templates.iter().any(|o| o == t))
                && !options.exclude_templates.iter().any(|e| e == t)
        };
        if !known.iter().any(|t| allowed(t)) {
            return Err(DbError::NoTemplates(
                "the template filters leave no template to draw from",
            )
            .into());
        }
        let mut next: Box<dyn FnMut() -> GeneratedQuery> = match options.source {
            WorkloadSource::Events => {
                let table = self.require_table(&options.table)?;
                let mut domain = EventsDomain::for_rows(table.row_count);
                domain.table = options.table.to_string();
                domain.customers_table = options.customers_table.to_string();
                let mut generator = EventsWorkload::new(options.seed, domain);
                Box::new(move || generator.next_query())
            }
            WorkloadSource::Tpch(mix) => {
                let mut generator = TpchWorkload::new(options.seed, mix, self.tpch_scale_factor()?);
                Box::new(move || generator.next_query())
            }
        };
        // Streamed one by one: memory stays flat whatever --num-queries says.
        let mut emitted = 0u64;
        while emitted < options.num_queries {
            let q = next();
            if allowed(q.template) {
                emit(q)?;
                emitted += 1;
            }
        }
        Ok(())
    }
}
