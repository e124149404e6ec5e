//! One client session of the SQL endpoint (`dbopt serve --sql-addr`): each statement a
//! PostgreSQL client sends runs through the same path as `dbopt query`: the read-only guard,
//! routing across the table's live layouts, execution, and a row in the query log (origin
//! `sql`).
//!
//! A statement's primary table (the one it is routed and logged against) is the first
//! managed table it names; a statement that names none (`SELECT 1`) reads the first managed
//! table's session. A session keeps one runner per primary table, so the tables registered
//! for a client's first query stay registered for the next.

use crate::workload::{Routing, Runner};
use crate::{DbError, Workspace};
use dbopt_catalog::QueryOrigin;
use dbopt_core::TableName;
use dbopt_engine::{QueryOutcome, StatementDescription, referenced_tables};
use std::collections::HashMap;

/// A client's session: routed runners by primary table.
pub struct SqlSession<'a> {
    ws: &'a Workspace,
    routing: Option<Routing>,
    runners: HashMap<TableName, Runner<'a>>,
}

impl<'a> SqlSession<'a> {
    /// A session over `ws`, routed across each table's live layouts (`seed` makes the choices
    /// repeatable), or on the active layouts without `routed`.
    pub fn new(ws: &'a Workspace, routed: bool, seed: u64) -> Result<Self, DbError> {
        let routing = if routed {
            Some(Routing {
                settings: ws.loop_settings()?,
                seed,
            })
        } else {
            None
        };
        Ok(Self {
            ws,
            routing,
            runners: HashMap::new(),
        })
    }

    /// The table `sql` is routed and logged against.
    pub fn primary_table(&self, sql: &str) -> Result<TableName, DbError> {
        let managed: Vec<TableName> = self
            .ws
            .catalog()
            .list_tables()?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let named = referenced_tables(sql);
        named
            .iter()
            .find_map(|n| managed.iter().find(|t| t.as_str() == n))
            .or_else(|| managed.first())
            .cloned()
            .ok_or(DbError::NoTables)
    }

    /// Plans `sql` (with `$n` placeholders) against the registered tables: its parameter
    /// types and result columns.
    pub async fn describe(&mut self, sql: &str) -> Result<StatementDescription, DbError> {
        let table = self.primary_table(sql)?;
        let runner = self.runner(&table).await?;
        Ok(runner.session().context().describe(sql).await?)
    }

    /// Runs `sql` routed and logged like `dbopt query`.
    pub async fn run(&mut self, sql: &str) -> Result<QueryOutcome, DbError> {
        let table = self.primary_table(sql)?;
        let runner = self.runner(&table).await?;
        runner.run(sql, QueryOrigin::Sql, None).await
    }

    async fn runner(&mut self, table: &TableName) -> Result<&mut Runner<'a>, DbError> {
        if !self.runners.contains_key(table) {
            let runner = Runner::open(self.ws, table, self.routing.as_ref()).await?;
            self.runners.insert(table.clone(), runner);
        }
        Ok(self
            .runners
            .get_mut(table)
            .expect("the runner was inserted above"))
    }
}
