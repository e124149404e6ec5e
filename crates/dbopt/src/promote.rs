//! Promote and rollback: the table's active layout changes only by a compare-and-swap that
//! names the layout it expects to replace, so two processes deciding at once cannot both win,
//! and the loser changes nothing. Each change is recorded in the catalog's `activations`.

use crate::{DbError, Workspace};
use dbopt_catalog::{ActivationKind, ActiveSwap, LayoutStatus, Verdict};
use dbopt_core::{LayoutId, TableName};
use serde::Serialize;

/// What a promote or rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveChange {
    /// The table.
    pub table: String,
    /// The layout that was active.
    pub from: LayoutId,
    /// The layout that is active now.
    pub to: LayoutId,
    /// False when the layout was already active (nothing changed).
    pub changed: bool,
    /// For a Delta table: the log version that now holds the layout.
    pub lake_commit: Option<crate::lake::LakeCommit>,
}

impl Workspace {
    /// Makes `layout` the active layout of `table` if it is ready, belongs to the table and did
    /// not fail its canary (unless `force`).
    pub fn promote(
        &self,
        table: &TableName,
        layout: &LayoutId,
        force: bool,
        actor: &str,
        reason: &str,
    ) -> Result<ActiveChange, DbError> {
        let current = self.require_table(table)?.active_layout;
        self.require_servable(table, layout)?;
        if !force
            && let Some(c) = self.catalog().latest_canary(table, layout)?
            && c.canary.verdict == Verdict::Reject
        {
            return Err(DbError::CanaryFailed {
                table: table.to_string(),
                layout: layout.to_string(),
                reason: c.canary.reason.clone(),
            });
        }
        self.swap(
            table,
            &current,
            layout,
            ActivationKind::Promote,
            actor,
            reason,
        )
    }

    /// Makes the layout that was active before the current one (or `to`) active again.
    pub fn rollback(
        &self,
        table: &TableName,
        to: Option<&LayoutId>,
        actor: &str,
        reason: &str,
    ) -> Result<ActiveChange, DbError> {
        let current = self.require_table(table)?.active_layout;
        let target = match to {
            Some(t) => t.clone(),
            None => {
                self.previous_active(table, &current)?
                    .ok_or_else(|| DbError::NoRollbackTarget {
                        table: table.to_string(),
                        current: current.to_string(),
                    })?
            }
        };
        self.require_servable(table, &target)?;
        self.swap(
            table,
            &current,
            &target,
            ActivationKind::Rollback,
            actor,
            reason,
        )
    }

    /// The layout `current` replaced as active, from the activation history.
    pub fn previous_active(
        &self,
        table: &TableName,
        current: &LayoutId,
    ) -> Result<Option<LayoutId>, DbError> {
        Ok(self
            .catalog()
            .activations(table)?
            .into_iter()
            .rev()
            .find(|a| &a.to_layout == current && &a.from_layout != current)
            .map(|a| a.from_layout))
    }

    /// Checks that `layout` is a ready layout of `table`, naming the owner table when the id
    /// belongs to another one.
    fn require_servable(&self, table: &TableName, layout: &LayoutId) -> Result<(), DbError> {
        match self.catalog().get_layout(table, layout)? {
            Some(l) if l.status == LayoutStatus::Ready => Ok(()),
            Some(l) => Err(DbError::LayoutNotReady {
                table: table.to_string(),
                layout: layout.to_string(),
                status: l.status.to_string(),
            }),
            None => {
                for other in self.catalog().list_tables()? {
                    if &other.name != table
                        && self.catalog().get_layout(&other.name, layout)?.is_some()
                    {
                        return Err(DbError::LayoutOfOtherTable {
                            table: table.to_string(),
                            layout: layout.to_string(),
                            owner: other.name.to_string(),
                        });
                    }
                }
                Err(DbError::UnknownLayout {
                    table: table.to_string(),
                    layout: layout.to_string(),
                })
            }
        }
    }

    fn swap(
        &self,
        table: &TableName,
        from: &LayoutId,
        to: &LayoutId,
        kind: ActivationKind,
        actor: &str,
        reason: &str,
    ) -> Result<ActiveChange, DbError> {
        let mut change = ActiveChange {
            table: table.to_string(),
            from: from.clone(),
            to: to.clone(),
            changed: from != to,
            lake_commit: None,
        };
        if change.changed {
            // A lake table's content changes by a commit of its own log first; the catalog
            // follows (a crash between them is repaired by doing the same change again).
            let operation = match kind {
                ActivationKind::Rollback => "RESTORE",
                _ => "OPTIMIZE",
            };
            change.lake_commit = self.publish_to_lake(table, from, to, operation)?;
            crate::error::fail_point("serving.before_swap")?;
            self.catalog().swap_active_layout(&ActiveSwap {
                table,
                expected: from,
                to,
                kind,
                actor,
                reason,
            })?;
            crate::error::fail_point("serving.swapped")?;
        }
        Ok(change)
    }
}
