//! Join-carried filters: the keys a hash join's build side pushes into a probe-side scan.
//!
//! DataFusion runs the build side of a hash join first and then pushes a dynamic filter into
//! the scan on the probe side: the build keys' bounds (which prune row groups and pages like
//! any range) and a membership test on each row (which, with filter pushdown, keeps the
//! reader from fetching the other columns' pages that hold no member). A date-sorted fact
//! table joined to a date-filtered dimension reads far fewer bytes than its own filters say.
//!
//! [`join_key_sets`] finds, for one table, every such filter a query's physical plan carries
//! into the table's scan, and collects the keys by running the build side alone (the probe
//! side never runs). The what-if model prices each set as a filter of the scan.
//!
//! Guarantees:
//! - **Only filters DataFusion pushes.** A join counts when its `HashJoinExec` holds a
//!   dynamic filter, the table's scan below its probe side carries one, and the probe key is
//!   a column of that scan, by name.
//! - **One scan.** A table scanned more than once (a self-join) gets none: which scan a
//!   filter reaches is not told by column names.
//! - **Bounded.** A build side with more than `max_keys` rows is dropped (its filter is not
//!   priced) as soon as it passes the limit, so memory stays bounded.

use crate::EngineError;
use crate::execute::file_in_dir;
use crate::register::RegisteredLayout;
use crate::session::Session;
use arrow::array::ArrayRef;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{FileGroup, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::execution_plan::reset_plan_states;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr, execute_stream};
use futures::TryStreamExt;
use std::sync::Arc;

/// Keys a join's build side carries into one column of the probe-side scan.
#[derive(Debug, Clone)]
pub struct JoinKeySet {
    /// The probe table's column the keys filter.
    pub column: String,
    /// The build side's keys, one per build row (duplicates and nulls included).
    pub keys: ArrayRef,
}

/// The key sets the hash joins of `sql` push into the scan of `table`; empty when the table is
/// not scanned, is scanned more than once, or no join pushes into it.
pub async fn join_key_sets(
    session: &Session,
    sql: &str,
    table: &RegisteredLayout,
    max_keys: usize,
) -> Result<Vec<JoinKeySet>, EngineError> {
    crate::check_read_only(sql)?;
    let ctx = session.ctx();
    let df = ctx.sql(sql).await.map_err(EngineError::from_plan)?;
    let plan = df
        .create_physical_plan()
        .await
        .map_err(EngineError::from_plan)?;
    if table_scans(&plan, table).len() != 1 {
        return Ok(Vec::new());
    }
    let mut sets = Vec::new();
    for join in pushing_joins(&plan, table) {
        sets.extend(build_keys(session, &join, max_keys).await?);
    }
    Ok(sets)
}

/// A hash join whose dynamic filter reaches the table's scan: its build side, and each build
/// key expression with the probe table's column it filters.
struct PushingJoin {
    build: Arc<dyn ExecutionPlan>,
    keys: Vec<(Arc<dyn PhysicalExpr>, String)>,
}

/// Every hash join of `plan` whose dynamic filter reaches the scan of `table` on its probe
/// side, on a column of that scan.
fn pushing_joins(plan: &Arc<dyn ExecutionPlan>, table: &RegisteredLayout) -> Vec<PushingJoin> {
    let mut found = Vec::new();
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        let filters: Vec<u64> = join
            .dynamic_expressions_produced()
            .iter()
            .filter_map(|f| f.expression_id())
            .collect();
        let mut keys = Vec::new();
        for scan in table_scans(join.right(), table) {
            if filters.is_empty() || !carries_filter(&scan, &filters) {
                continue;
            }
            for (build_key, probe_key) in join.on() {
                let Some(column) = probe_key
                    .downcast_ref::<Column>()
                    .map(|c| c.name().to_string())
                else {
                    continue;
                };
                if scan.schema().field_with_name(&column).is_ok() {
                    keys.push((Arc::clone(build_key), column));
                }
            }
        }
        if !keys.is_empty() {
            found.push(PushingJoin {
                build: Arc::clone(join.left()),
                keys,
            });
        }
    }
    for child in plan.children() {
        found.extend(pushing_joins(child, table));
    }
    found
}

/// The Parquet scans under `plan` that read `table`'s layout.
fn table_scans(
    plan: &Arc<dyn ExecutionPlan>,
    table: &RegisteredLayout,
) -> Vec<Arc<dyn ExecutionPlan>> {
    let mut scans = Vec::new();
    let reads_table = plan
        .downcast_ref::<DataSourceExec>()
        .and_then(|s| s.downcast_to_file_source::<ParquetSource>())
        .is_some_and(|(config, _)| {
            config
                .file_groups
                .iter()
                .flat_map(FileGroup::iter)
                .any(|f| file_in_dir(f.object_meta.location.as_ref(), &table.dir))
        });
    if reads_table {
        scans.push(Arc::clone(plan));
    }
    for child in plan.children() {
        scans.extend(table_scans(child, table));
    }
    scans
}

/// Whether a Parquet scan's predicate holds one of the dynamic filters `ids` (a filter keeps
/// its expression id wherever it is pushed).
fn carries_filter(scan: &Arc<dyn ExecutionPlan>, ids: &[u64]) -> bool {
    let Some(predicate) = scan
        .downcast_ref::<DataSourceExec>()
        .and_then(|s| s.downcast_to_file_source::<ParquetSource>())
        .and_then(|(_, source)| source.filter())
    else {
        return false;
    };
    let mut found = false;
    let _ = predicate.apply(|e| {
        found = e.expression_id().is_some_and(|id| ids.contains(&id));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

/// Runs a join's build side alone (on fresh execution state: the plan was never run, but a
/// join's operators hold state that must be executed once) and evaluates each of its keys on
/// every row; nothing past `max_keys` rows.
async fn build_keys(
    session: &Session,
    join: &PushingJoin,
    max_keys: usize,
) -> Result<Vec<JoinKeySet>, EngineError> {
    let build = reset_plan_states(Arc::clone(&join.build)).map_err(EngineError::from_exec)?;
    let schema = build.schema();
    let mut stream =
        execute_stream(build, session.ctx().task_ctx()).map_err(EngineError::from_exec)?;
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); join.keys.len()];
    let mut rows = 0usize;
    while let Some(batch) = stream.try_next().await.map_err(EngineError::from_exec)? {
        rows += batch.num_rows();
        if rows > max_keys {
            return Ok(Vec::new());
        }
        for ((key, _), part) in join.keys.iter().zip(parts.iter_mut()) {
            let keys = key
                .evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .map_err(EngineError::from_exec)?;
            part.push(keys);
        }
    }
    let mut sets = Vec::with_capacity(join.keys.len());
    for ((key, column), part) in join.keys.iter().zip(parts) {
        let keys = if part.is_empty() {
            // An empty build side lets no probe row through.
            let data_type = key.data_type(&schema).map_err(EngineError::from_exec)?;
            arrow::array::new_empty_array(&data_type)
        } else {
            let refs: Vec<&dyn arrow::array::Array> = part.iter().map(AsRef::as_ref).collect();
            arrow::compute::concat(&refs)
                .map_err(|e| EngineError::Execution(format!("collecting join keys: {e}")))?
        };
        sets.push(JoinKeySet {
            column: column.clone(),
            keys,
        });
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{EngineSettings, new_session};
    use arrow::array::{Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use dbopt_core::LayoutId;
    use std::path::Path;

    /// Writes `batch` as one Parquet file in `dir` and registers it as `name`.
    async fn table(
        session: &Session,
        dir: &Path,
        name: &str,
        batch: RecordBatch,
    ) -> RegisteredLayout {
        std::fs::create_dir_all(dir).unwrap();
        let file = std::fs::File::create(dir.join("part-00000.parquet")).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        session
            .ctx()
            .register_parquet(name, dir.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        RegisteredLayout {
            table: name.into(),
            layout_id: LayoutId::initial(),
            dir: dir.to_path_buf(),
            files_total: 1,
            row_groups_total: 1,
        }
    }

    /// A fact table of 4,000 rows over 100 dimension keys, and the dimension (100 rows, a
    /// `kind` of `a` on every tenth key).
    async fn star(session: &Session, root: &Path) -> (RegisteredLayout, RegisteredLayout) {
        let fact = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("f_key", DataType::Int64, false),
                Field::new("f_value", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int64Array::from_iter_values((0..4000).map(|i| i % 100))),
                Arc::new(Int64Array::from_iter_values(0..4000)),
            ],
        )
        .unwrap();
        let dim = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("d_key", DataType::Int64, false),
                Field::new("d_kind", DataType::Utf8, false),
            ])),
            vec![
                Arc::new(Int64Array::from_iter_values(0..100)),
                Arc::new(StringArray::from_iter_values(
                    (0..100).map(|i| if i % 10 == 3 { "a" } else { "b" }),
                )),
            ],
        )
        .unwrap();
        let fact = table(session, &root.join("fact"), "fact", fact).await;
        let dim = table(session, &root.join("dim"), "dim", dim).await;
        (fact, dim)
    }

    fn sorted_keys(set: &JoinKeySet) -> Vec<i64> {
        let keys = set.keys.as_any().downcast_ref::<Int64Array>().unwrap();
        let mut v: Vec<i64> = keys.iter().flatten().collect();
        v.sort_unstable();
        v
    }

    #[tokio::test]
    async fn the_build_side_s_keys_reach_the_probe_table_s_join_column() {
        let root = tempfile::tempdir().unwrap();
        let session = new_session(&EngineSettings::default());
        let (fact, dim) = star(&session, root.path()).await;
        let sql = "SELECT sum(f_value) FROM fact JOIN dim ON f_key = d_key WHERE d_kind = 'a'";
        let sets = join_key_sets(&session, sql, &fact, 1000).await.unwrap();
        assert_eq!(sets.len(), 1, "{sets:?}");
        assert_eq!(sets[0].column, "f_key");
        assert_eq!(
            sorted_keys(&sets[0]),
            (0..10).map(|i| i * 10 + 3).collect::<Vec<_>>()
        );
        // The dimension is the build side: nothing is pushed into it.
        let none = join_key_sets(&session, sql, &dim, 1000).await.unwrap();
        assert!(none.is_empty(), "{none:?}");
        // A build side past the limit is dropped, not truncated.
        let capped = join_key_sets(&session, sql, &fact, 5).await.unwrap();
        assert!(capped.is_empty(), "{capped:?}");
    }

    #[tokio::test]
    async fn a_table_scanned_twice_or_not_joined_gets_no_keys() {
        let root = tempfile::tempdir().unwrap();
        let session = new_session(&EngineSettings::default());
        let (fact, _) = star(&session, root.path()).await;
        let self_join = "SELECT count(*) FROM fact a JOIN fact b ON a.f_key = b.f_value \
                         WHERE b.f_value < 10";
        assert!(
            join_key_sets(&session, self_join, &fact, 1000)
                .await
                .unwrap()
                .is_empty()
        );
        let alone = "SELECT count(*) FROM fact WHERE f_key = 3";
        assert!(
            join_key_sets(&session, alone, &fact, 1000)
                .await
                .unwrap()
                .is_empty()
        );
        let write = join_key_sets(&session, "DROP TABLE fact", &fact, 1000).await;
        assert!(write.is_err());
    }
}
