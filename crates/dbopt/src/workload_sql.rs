//! `workload-sql`: the generated workload as SQL text without running it, so the same queries
//! can be replayed elsewhere (the benchmark runs them on DuckDB too) or split into a training
//! set and a held-out test set by template.

use crate::{DbError, Workspace};
use dbopt_core::TableName;
use dbopt_data::workload::{EventsDomain, EventsWorkload, GeneratedQuery, template_names};

/// Which generated queries to emit.
#[derive(Debug, Clone)]
pub struct WorkloadSqlOptions {
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

/// Checks template names against the generator's list.
fn check_templates(names: &[String]) -> Result<(), DbError> {
    let known = template_names();
    match names.iter().find(|n| !known.contains(&n.as_str())) {
        Some(bad) => Err(DbError::Invalid(format!(
            "unknown template '{bad}': known templates are {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

impl Workspace {
    /// Draws `num_queries` events-workload queries that pass the template filters.
    pub fn events_workload_sql(
        &self,
        options: &WorkloadSqlOptions,
    ) -> Result<Vec<GeneratedQuery>, DbError> {
        check_templates(&options.only_templates)?;
        check_templates(&options.exclude_templates)?;
        let allowed = |t: &str| {
            (options.only_templates.is_empty() || options.only_templates.iter().any(|o| o == t))
                && !options.exclude_templates.iter().any(|e| e == t)
        };
        if !template_names().iter().any(|t| allowed(t)) {
            return Err(DbError::Invalid(
                "the template filters leave no template to draw from".to_string(),
            ));
        }
        let table = self.require_table(&options.table)?;
        let mut domain = EventsDomain::for_rows(table.row_count);
        domain.table = options.table.to_string();
        domain.customers_table = options.customers_table.to_string();
        let mut generator = EventsWorkload::new(options.seed, domain);
        let mut out = Vec::with_capacity(options.num_queries as usize);
        while (out.len() as u64) < options.num_queries {
            let q = generator.next_query();
            if allowed(q.template) {
                out.push(q);
            }
        }
        Ok(out)
    }
}
