//! Hostile inputs: everything dbopt reads from outside, mutated from a small real corpus
//! (`tests/corpus/`): Parquet (truncated, flipped bytes in footer and pages, huge declared
//! sizes), CSV (ragged rows, invalid UTF-8), workload `.toml` and `.sql`, query logs,
//! `dbopt.toml` and layout manifests. Each target calls the library function that parses the
//! input and fails, printing the input, on a panic, on an error that spans lines or hides a
//! panic, or on a failed load that leaves a table or files behind. A few real CLI runs check
//! exit code 2 and a one-line error that names the file.
//!
//! The default cases are a smoke run of a few seconds per target (CI); the `#[ignore]`d
//! `*_long` variants run many more: `cargo test -p dbopt-cli --test hostile_inputs -- --ignored`.
//! `DBOPT_FUZZ_CASES=N` overrides every count.

mod common;

use common::run;
use dbopt::loop_settings::LoopSettings;
use dbopt::{NoProgress, Workspace};
use dbopt_core::{Config, LayoutManifest, TableName};
use dbopt_data::workload_file::{TemplateWorkload, parse_template_file, split_sql};
use dbopt_testkit::TempWorkspace;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn seed(name: &str) -> Vec<u8> {
    std::fs::read(corpus(name)).unwrap_or_else(|e| panic!("corpus file {name}: {e}"))
}

/// Cases per target: `smoke` unless DBOPT_FUZZ_CASES says otherwise.
fn cases(smoke: u32) -> u32 {
    std::env::var("DBOPT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(smoke)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    })
}

/// One edit of a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep only the first part.
    Truncate(Index),
    /// XOR one byte anywhere.
    Flip(Index, u8),
    /// XOR one byte in the last 10% (the Parquet footer and its length).
    FlipTail(Index, u8),
    /// Overwrite 1..8 bytes in the tail with 0xFF (huge varints and sizes in the footer).
    HugeTail(Index, u8),
    /// Overwrite the 4-byte footer length (before `PAR1`) with a value.
    FooterLen(u32),
    /// Insert bytes anywhere.
    Insert(Index, Vec<u8>),
    /// Remove a run of bytes.
    Delete(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<Index>(), 1..=255u8).prop_map(|(i, x)| Mutation::FlipTail(i, x)),
        (any::<Index>(), 1..=8u8).prop_map(|(i, n)| Mutation::HugeTail(i, n)),
        prop_oneof![
            Just(u32::MAX),
            Just(i32::MAX as u32),
            any::<u32>(),
            0..64u32
        ]
        .prop_map(Mutation::FooterLen),
        (
            any::<Index>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b','),
                    Just(b'\n'),
                    Just(b'"'),
                    Just(b'{'),
                    Just(0xFF)
                ],
                1..12
            )
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1..=64u8).prop_map(|(i, n)| Mutation::Delete(i, n)),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    let len = data.len();
    let tail_start = len - (len / 10).max(1);
    match m {
        Mutation::Truncate(i) => data.truncate(i.index(len)),
        Mutation::Flip(i, x) => data[i.index(len)] ^= x,
        Mutation::FlipTail(i, x) => data[tail_start + i.index(len - tail_start)] ^= x,
        Mutation::HugeTail(i, n) => {
            let at = tail_start + i.index(len - tail_start);
            for b in data.iter_mut().skip(at).take(*n as usize) {
                *b = 0xFF;
            }
        }
        Mutation::FooterLen(v) if len >= 8 => {
            data[len - 8..len - 4].copy_from_slice(&v.to_le_bytes())
        }
        Mutation::FooterLen(_) => {}
        Mutation::Insert(i, bytes) => {
            let at = i.index(len + 1);
            data.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i.index(len);
            let end = (at + *n as usize).min(len);
            data.drain(at..end);
        }
    }
}

fn mutated(seed: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for m in edits {
        apply(&mut data, m);
    }
    data
}

fn edits() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

/// Fails the case unless `err` is one line without a hidden panic.
fn check_error(err: &str, input: &str) -> Result<(), TestCaseError> {
    prop_assert!(!err.contains('\n'), "multi-line error for {input}: {err}");
    prop_assert!(
        !err.to_lowercase().contains("panic"),
        "hidden panic for {input}: {err}"
    );
    prop_assert!(!err.trim().is_empty(), "empty error for {input}");
    Ok(())
}

/// An in-process workspace with the seed CSV loaded as table `base`.
struct Fixture {
    _dir: tempfile::TempDir,
    ws: Workspace,
    rt: tokio::runtime::Runtime,
    scratch: PathBuf,
    next: AtomicU64,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::with_dirs(&dir.path().join("data"), &dir.path().join("m.db"));
        let flags = [
            ("threads", "2".to_string(), "test"),
            ("memory_limit", "256MiB".to_string(), "test"),
            (
                "data_dir",
                dir.path().join("data").display().to_string(),
                "test",
            ),
            (
                "metadata_db",
                dir.path().join("m.db").display().to_string(),
                "test",
            ),
        ];
        if let Ok(c) = Config::resolve(Path::new("/nonexistent"), None, &BTreeMap::new(), &flags) {
            config = c;
        }
        let ws = Workspace::open(config).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        let fixture = Self {
            _dir: dir,
            ws,
            rt,
            scratch,
            next: AtomicU64::new(0),
        };
        fixture
            .rt
            .block_on(fixture.ws.load_dataset(
                &table("base"),
                &corpus("seed.csv"),
                false,
                &NoProgress,
            ))
            .unwrap();
        fixture
    }

    /// A fresh directory holding `bytes` as `name`.
    fn source(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let dir = self.scratch.join(format!("src{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn fresh_table(&self) -> TableName {
        table(&format!("t{}", self.next.fetch_add(1, Ordering::SeqCst)))
    }

    /// Loads `path` as a new table; a failure must leave no table and no files.
    fn load(&self, path: &Path) -> Result<(), TestCaseError> {
        let t = self.fresh_table();
        let result = self
            .rt
            .block_on(self.ws.load_dataset(&t, path, false, &NoProgress));
        if let Err(e) = result {
            check_error(&e.to_string(), &path.display().to_string())?;
            prop_assert!(
                self.ws.catalog().get_table(&t).unwrap().is_none(),
                "failed load of {} left table {t}: {e}",
                path.display()
            );
            prop_assert!(
                !self.ws.table_dir(&t).exists(),
                "failed load of {} left {}",
                path.display(),
                self.ws.table_dir(&t).display()
            );
        }
        Ok(())
    }
}

fn table(name: &str) -> TableName {
    TableName::new(name).unwrap()
}

/// The Parquet file of the base table's initial layout (a real dbopt-written file).
fn base_parquet(f: &Fixture) -> Vec<u8> {
    let dir =
        f.ws.layout_dir(&table("base"), &dbopt_core::LayoutId::initial());
    let part = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    std::fs::read(part).unwrap()
}

fn parquet_load(n: u32) {
    let f = Fixture::new();
    let seed = seed("seed.parquet");
    runner(n)
        .run(&edits(), |e| {
            let path = f.source("data.parquet", &mutated(&seed, &e));
            f.load(&path)
        })
        .unwrap();
}

fn parquet_adopt(n: u32) {
    let f = Fixture::new();
    let seed = base_parquet(&f);
    runner(n)
        .run(&edits(), |e| {
            let path = f.source("part-0.parquet", &mutated(&seed, &e));
            let dir = path.parent().unwrap();
            let result =
                f.rt.block_on(f.ws.adopt_layout(&table("base"), dir, &NoProgress));
            if let Err(err) = result {
                check_error(&err.to_string(), &dir.display().to_string())?;
            }
            Ok(())
        })
        .unwrap();
}

/// CSV edits: ragged rows, stray quotes, invalid UTF-8, on top of byte mutations.
fn csv_edit() -> impl Strategy<Value = (Vec<Mutation>, Index, u8)> {
    (
        prop::collection::vec(mutation(), 0..3),
        any::<Index>(),
        0..5u8,
    )
}

fn csv_load(n: u32) {
    let f = Fixture::new();
    let seed = seed("seed.csv");
    runner(n)
        .run(&csv_edit(), |(e, at, kind)| {
            let mut data = mutated(&seed, &e);
            let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
            let i = at.index(lines.len().max(1));
            let extra: &[u8] = match kind {
                0 => b"1,2,3,4,5,6,7",                 // too many fields
                1 => b"9",                             // too few
                2 => b"\xff\xfe,\xc3(,1.0,2025-01-01", // invalid UTF-8
                3 => b"\"unterminated,1,2,3",
                _ => b"",
            };
            let mut out: Vec<u8> = Vec::new();
            for (k, l) in lines.iter().enumerate() {
                if k == i && k > 0 {
                    out.extend_from_slice(extra);
                    out.push(b'\n');
                }
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            data = out;
            let path = f.source("data.csv", &data);
            f.load(&path)
        })
        .unwrap();
}

fn import_sql(n: u32) {
    let f = Fixture::new();
    let seed = seed("seed.sql");
    runner(n)
        .run(&edits(), |e| {
            let bytes = mutated(&seed, &e);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = split_sql(text);
            }
            let path = f.source("log.sql", &bytes);
            if let Err(err) = f.ws.import_queries(&table("base"), &path) {
                let msg = err.to_string();
                check_error(&msg, &path.display().to_string())?;
                prop_assert!(
                    msg.contains("log.sql"),
                    "error does not name the file: {msg}"
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Numbers that break arithmetic: extremes, zero, negatives, NaN-ish text.
fn nasty_number() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("1.7976931348623157e308".to_string()),
        Just("-1.7976931348623157e308".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e-320".to_string()),
        (-1000i64..1000).prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
    ]
}

fn nasty_width() -> impl Strategy<Value = String> {
    let one = prop_oneof![
        Just("99999999999999999d".to_string()),
        Just("9223372036854775807m".to_string()),
        Just("6405119470038038h".to_string()),
        Just("0d".to_string()),
        (0u64..100_000_000_000).prop_map(|v| format!("{v}d")),
        (0u64..1000).prop_map(|v| format!("{v}h")),
        any::<u64>().prop_map(|v| format!("{v}m")),
    ];
    prop_oneof![
        one.clone(),
        (one.clone(), one).prop_map(|(a, b)| format!("{a}..{b}"))
    ]
}

fn nasty_date() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2025-01-01".to_string()),
        Just("2025-12-31 23:59:59".to_string()),
        Just("+262142-12-31".to_string()),
        Just("-262143-01-01".to_string()),
        Just("0001-01-01".to_string()),
        Just("9999-12-31".to_string()),
        (1i32..9999, 1u32..13, 1u32..29).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
    ]
}

/// A structured template file with hostile parameter values.
fn template_text() -> impl Strategy<Value = String> {
    (
        nasty_number(),
        nasty_number(),
        nasty_number(),
        nasty_number(),
        nasty_date(),
        nasty_date(),
        nasty_width(),
        nasty_width(),
        (nasty_number(), nasty_number()),
    )
        .prop_map(|(i1, i2, f1, f2, d1, d2, w1, w2, (exp, weight))| {
            format!(
                "[[template]]\nname = \"a\"\nweight = {weight}\nsql = \"SELECT {{i}}, {{f}}, {{d.start}}, {{d.end}}, {{t.start}}, {{t.end}}, {{z}} FROM {{table}}\"\n[template.params]\ni = {{ type = \"int\", min = {i1}, max = {i2} }}\nf = {{ type = \"float\", min = {f1}, max = {f2}, decimals = 18446744073709551615 }}\nd = {{ type = \"date_range\", from = \"{d1}\", to = \"{d2}\", width = \"{w1}\" }}\nt = {{ type = \"timestamp_range\", from = \"{d1}\", to = \"{d2}\", width = \"{w2}\" }}\nz = {{ type = \"zipf\", column = \"id\", exponent = {exp}, max_values = 18446744073709551615 }}\n"
            )
        })
}

fn render_templates(text: &str) -> Result<(), TestCaseError> {
    let values = BTreeMap::from([(
        "id".to_string(),
        (0..50).map(|v| v.to_string()).collect::<Vec<_>>(),
    )]);
    let parsed = match parse_template_file("w.toml", text) {
        Ok(p) => p,
        Err(e) => return check_error(&e.to_string(), text),
    };
    let _ = parsed.zipf_columns();
    match TemplateWorkload::new("w.toml", text, &parsed, "t", &values, 1) {
        Ok(mut w) => {
            for _ in 0..20 {
                let q = w.next_query();
                prop_assert!(!q.sql.is_empty());
            }
        }
        Err(e) => {
            let msg = e.to_string();
            check_error(&msg, text)?;
            prop_assert!(
                msg.starts_with("w.toml"),
                "error does not name the file: {msg}"
            );
        }
    }
    Ok(())
}

fn workload_toml(n: u32) {
    let seed = seed("seed.toml");
    runner(n)
        .run(&edits(), |e| {
            let bytes = mutated(&seed, &e);
            match std::str::from_utf8(&bytes) {
                Ok(text) => render_templates(text),
                Err(_) => Ok(()),
            }
        })
        .unwrap();
    runner(n)
        .run(&template_text(), |text| render_templates(&text))
        .unwrap();
}

/// `dbopt.toml` mutated, and every key given a hostile value.
fn config_file(n: u32) {
    let seed = seed("seed_dbopt.toml");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbopt.toml");
    let resolve = |file: &Path, flags: &[(&str, String, &str)]| -> Result<(), TestCaseError> {
        match Config::resolve(dir.path(), Some(file), &BTreeMap::new(), flags) {
            Ok(config) => {
                let _ = config.statement_timeout();
                let _ = config.memory_limit();
                if let Err(e) = LoopSettings::from_config(&config) {
                    check_error(&e.to_string(), "config")?;
                }
            }
            Err(e) => check_error(&e.to_string(), &file.display().to_string())?,
        }
        Ok(())
    };
    runner(n)
        .run(&edits(), |e| {
            std::fs::write(&file, mutated(&seed, &e)).unwrap();
            resolve(&file, &[])
        })
        .unwrap();
    let keys: Vec<&str> = dbopt_core::config::KEYS.iter().map(|k| k.name).collect();
    let value = prop_oneof![
        nasty_number(),
        nasty_width(),
        Just("1e400".to_string()),
        Just("".to_string()),
        Just("99999999999999999999GiB".to_string()),
        prop::collection::vec(prop::sample::select(b"abcmshz0129.-".to_vec()), 0..12)
            .prop_map(|v| String::from_utf8(v).unwrap())
    ];
    std::fs::write(&file, "").unwrap();
    runner(n)
        .run(&(prop::sample::select(keys), value), |(key, v)| {
            resolve(&file, &[(key, v, "--flag")])
        })
        .unwrap();
}

/// Manifests dbopt wrote, edited: parsed alone, then read back by a query on the table.
fn manifest(n: u32) {
    let f = Fixture::new();
    let dir =
        f.ws.layout_dir(&table("base"), &dbopt_core::LayoutId::initial());
    let path = dir.join("_dbopt_layout.json");
    let seed = std::fs::read(&path).unwrap();
    let corpus_manifest = self::seed("seed_manifest.json");
    runner(n)
        .run(&edits(), |e| {
            let bytes = mutated(&seed, &e);
            let parsed_alone = mutated(&corpus_manifest, &e);
            if let Ok(text) = std::str::from_utf8(&parsed_alone)
                && let Ok(m) = LayoutManifest::from_json("m.json", text)
            {
                let _ = (m.total_bytes(), m.total_row_groups());
            }
            std::fs::write(&path, &bytes).unwrap();
            let result = f.rt.block_on(async {
                let session = f.ws.query_session(&table("base"), None).await?;
                session
                    .execute_unlogged("SELECT name, count(*) FROM base GROUP BY name")
                    .await
            });
            std::fs::write(&path, &seed).unwrap();
            if let Err(err) = result {
                check_error(&err.to_string(), "manifest")?;
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn hostile_parquet_load() {
    parquet_load(cases(48));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_parquet_load_long() {
    parquet_load(cases(2000));
}

#[test]
fn hostile_parquet_adopt() {
    parquet_adopt(cases(32));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_parquet_adopt_long() {
    parquet_adopt(cases(1000));
}

#[test]
fn hostile_csv_load() {
    csv_load(cases(32));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_csv_load_long() {
    csv_load(cases(1000));
}

#[test]
fn hostile_import_sql() {
    import_sql(cases(64));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_import_sql_long() {
    import_sql(cases(5000));
}

#[test]
fn hostile_workload_toml() {
    workload_toml(cases(256));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_workload_toml_long() {
    workload_toml(cases(20000));
}

#[test]
fn hostile_config() {
    config_file(cases(256));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_config_long() {
    config_file(cases(20000));
}

#[test]
fn hostile_manifest() {
    manifest(cases(48));
}

#[test]
#[ignore = "long fuzz run"]
fn hostile_manifest_long() {
    manifest(cases(2000));
}

// ---- real CLI runs: exit code 2, one line naming the input ----

/// A workspace with the seed CSV loaded as table `base`.
fn cli_base() -> TempWorkspace {
    let ws = TempWorkspace::new();
    let csv = corpus("seed.csv");
    run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "base",
            "--source-path",
            csv.to_str().unwrap(),
        ],
    )
    .success();
    ws
}

fn one_line_naming(run: &dbopt_testkit::Run, needle: &str) {
    let line = run.user_error(needle);
    assert_eq!(line.trim().lines().count(), 1, "{line}");
}

#[test]
fn cli_rejects_corrupt_parquet_csv_and_workload_files() {
    let ws = cli_base();
    let parquet = std::fs::read(
        std::fs::read_dir(ws.data_dir().join("base/layout_initial"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .unwrap(),
    )
    .unwrap();
    let dir = ws.root().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let mut huge = parquet.clone();
    let n = huge.len();
    huge[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    for (name, bytes) in [
        ("truncated.parquet", parquet[..parquet.len() / 2].to_vec()),
        ("hugefooter.parquet", huge),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        let r = run(
            &ws,
            &[
                "load-dataset",
                "--table-name",
                "bad",
                "--source-path",
                p.to_str().unwrap(),
            ],
        );
        one_line_naming(&r, name);
        assert!(
            !ws.data_dir().join("bad").exists(),
            "a failed load left files"
        );
    }
    let csv = dir.join("ragged.csv");
    std::fs::write(&csv, "a,b\n1,2\n3,4,5\n").unwrap();
    let r = run(
        &ws,
        &[
            "load-dataset",
            "--table-name",
            "bad",
            "--source-path",
            csv.to_str().unwrap(),
        ],
    );
    one_line_naming(&r, "ragged.csv");
    let sql = dir.join("latin1.sql");
    std::fs::write(&sql, b"SELECT '\xe9t\xe9' FROM base;").unwrap();
    let r = run(
        &ws,
        &[
            "import-queries",
            "--table-name",
            "base",
            "--file",
            sql.to_str().unwrap(),
        ],
    );
    one_line_naming(&r, "latin1.sql");
    let toml = dir.join("wide.toml");
    std::fs::write(
        &toml,
        "[[template]]\nname = \"a\"\nsql = \"SELECT count(*) FROM {table} WHERE day >= {d.start} AND day < {d.end}\"\n[template.params]\nd = { type = \"timestamp_range\", from = \"2025-01-01\", to = \"2025-02-01\", width = \"99999999999999999d\" }\n",
    )
    .unwrap();
    let r = run(
        &ws,
        &[
            "run-workload",
            "--table-name",
            "base",
            "--workload-file",
            toml.to_str().unwrap(),
        ],
    );
    one_line_naming(&r, "wide.toml");
}

#[test]
fn cli_known_panics_are_errors() {
    let ws = TempWorkspace::new();
    let r = run(&ws, &["migration-worker", "--loop", "--sleep-sec", "1e20"]);
    one_line_naming(&r, "--sleep-sec");
    let r = run(
        &ws,
        &[
            "autopilot",
            "--table-name",
            "x",
            "--loop",
            "--interval-sec",
            "1e20",
        ],
    );
    one_line_naming(&r, "--interval-sec");
    let ws = cli_base();
    // Streams instead of preallocating: a huge count starts printing at once (head closes
    // the pipe after the first lines; SIGPIPE ends dbopt quietly).
    let mut child = ws
        .command(&common::bin())
        .args([
            "workload-sql",
            "--table-name",
            "base",
            "--num-queries",
            "18446744073709551615",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 256];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    drop(out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !status.success() || status.code().is_none() || err.is_empty(),
        "{err}"
    );
}

#[test]
fn cli_hand_edited_catalog_and_manifest() {
    let ws = cli_base();
    let manifest = ws.data_dir().join("base/layout_initial/_dbopt_layout.json");
    let good = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, b"{\"layout_id\": \"initial\", \xff").unwrap();
    let r = run(
        &ws,
        &["query", "--table-name", "base", "SELECT count(*) FROM base"],
    );
    one_line_naming(&r, "_dbopt_layout.json");
    std::fs::write(&manifest, &good).unwrap();
    // A layout row whose directory is gone.
    std::fs::rename(
        ws.data_dir().join("base/layout_initial"),
        ws.data_dir().join("base/moved"),
    )
    .unwrap();
    let r = run(
        &ws,
        &["query", "--table-name", "base", "SELECT count(*) FROM base"],
    );
    one_line_naming(&r, "layout_initial");
    std::fs::rename(
        ws.data_dir().join("base/moved"),
        ws.data_dir().join("base/layout_initial"),
    )
    .unwrap();
    // A queued job whose plan was edited into garbage.
    let tables: i64 = common::scalar(&ws, "SELECT count(*) FROM tables");
    assert_eq!(tables, 1);
    ws.catalog()
        .execute(
            "INSERT INTO migration_jobs (table_name, source_layout, target_layout, spec_json, plan_json, mode, status, created_at_ms) \
             VALUES ('base', 'initial', '00000000000000aa', '{}', 'not json', 'full', 'queued', 0)",
            [],
        )
        .unwrap();
    let r = run(&ws, &["migration-worker", "--once"]);
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
    assert_ne!(r.code(), None, "killed by a signal: {}", r.stderr());
    let r = run(&ws, &["jobs"]);
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
}

#[test]
fn cli_statement_timeout_cancels_a_slow_query() {
    let ws = cli_base();
    let slow = "SELECT count(*) FROM base a, base b, base c, base d, base e WHERE a.amount + b.amount + c.amount + d.amount + e.amount > -1";
    let r = run(
        &ws,
        &[
            "query",
            "--table-name",
            "base",
            "--statement-timeout",
            "50ms",
            slow,
        ],
    );
    let line = r.user_error("statement_timeout 50ms");
    assert!(line.contains("--statement-timeout"), "{line}");
    // The same limit from the environment (and so dbopt.toml) applies to workloads too.
    let file = ws.root().join("slow.sql");
    std::fs::write(&file, format!("{slow};\n")).unwrap();
    let r = ws
        .command(&common::bin())
        .env("DBOPT_STATEMENT_TIMEOUT", "50ms")
        .args([
            "run-workload",
            "--table-name",
            "base",
            "--workload-file",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
    assert!(!text.contains("panicked"), "{text}");
    let logged: String = common::scalar(
        &ws,
        "SELECT coalesce(max(error), '') FROM query_log WHERE sql LIKE '%base e%'",
    );
    assert!(logged.contains("statement_timeout"), "{logged}\n{text}");
    let r = run(
        &ws,
        &[
            "query",
            "--table-name",
            "base",
            "--statement-timeout",
            "soon",
            "SELECT 1",
        ],
    );
    one_line_naming(&r, "statement_timeout");
}
