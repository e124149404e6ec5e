//! Hostile inputs: everything dbopt reads from outside, mutated from a small real corpus
//! (`tests/corpus/`): Parquet (truncated, flipped bytes in footer and pages, huge declared
//! sizes), CSV (ragged rows, invalid UTF-8), workload `.toml` and `.sql`, query logs,
//! `dbopt.toml` and layout manifests. Each target calls the library function that parses the
//! input and fails, printing the input, on a panic, on an error that spans lines or hides a
//! panic, or on a failed load that leaves a table or files behind. A few real CLI runs check
//! exit code 2 and a one-line error that names the file.
//!
//! The generators are a tiny seeded xorshift64 RNG (no fuzzing crate: it would change the
//! workspace's dependency features). Each target runs N cases; the seed comes from the clock,
//! `DBOPT_FUZZ_SEED=S` replays a run, `DBOPT_FUZZ_CASES=N` overrides every count. A failure
//! names the target, the seed, the case index and the input (binary inputs are kept in a file
//! under the temp directory and named by path).
//!
//! The default cases are a smoke run of a few seconds per target (CI); the `#[ignore]`d
//! `*_long` variants run many more: `cargo test -p dbopt-cli --test hostile_inputs -- --ignored`.

mod common;

use common::run;
use dbopt::import::{ImportFormat, ImportInput, ImportOptions, Zone};
use dbopt::loop_settings::LoopSettings;
use dbopt::{NoProgress, Workspace};
use dbopt_catalog::{MigrationMode, NewJob};
use dbopt_core::{Config, LayoutId, LayoutManifest, LayoutSpec, TableName};
use dbopt_data::workload_spec::{TemplateWorkload, parse_template_file, split_sql};
use dbopt_testkit::TempWorkspace;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
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

/// The run's seed: DBOPT_FUZZ_SEED, else the clock.
fn run_seed() -> u64 {
    if let Ok(v) = std::env::var("DBOPT_FUZZ_SEED") {
        return v
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("DBOPT_FUZZ_SEED={v}: {e}"));
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// xorshift64: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    /// The generator of case `case` of a run seeded `seed` (splitmix64 of both, never zero).
    fn for_case(seed: u64, case: u32) -> Self {
        let mut z = seed ^ (u64::from(case).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(z.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// In `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = hi.wrapping_sub(lo) as u64;
        lo.wrapping_add(self.below(span.saturating_add(1)) as i64)
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize].clone()
    }
}

/// Runs `check` on `cases` inputs drawn by `generate`; a failure (an `Err` or a panic) fails
/// the test with the target, seed, case index and input.
fn fuzz<T: Debug>(
    target: &str,
    cases: u32,
    mut generate: impl FnMut(&mut Rng) -> T,
    mut check: impl FnMut(&T) -> Result<(), String>,
) {
    let seed = run_seed();
    eprintln!("{target}: {cases} cases, DBOPT_FUZZ_SEED={seed}");
    for case in 0..cases {
        let input = generate(&mut Rng::for_case(seed, case));
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let why = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(why)) => why,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| {
                        panic
                            .downcast_ref::<&str>()
                            .map(std::string::ToString::to_string)
                    })
                    .unwrap_or_default();
                format!("panicked: {msg}")
            }
        };
        panic!(
            "{target} failed at case {case} (replay: DBOPT_FUZZ_SEED={seed} DBOPT_FUZZ_CASES={}): {why}\ninput: {input:?}",
            case + 1
        );
    }
}

/// Fails the case with `msg` unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Keeps a failing binary input where it survives the test's temp dirs; returns its path.
fn keep(name: &str, bytes: &[u8]) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join("dbopt-hostile-inputs");
    let path = dir.join(format!(
        "{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes)) {
        Ok(()) => format!("failing input kept at {}", path.display()),
        Err(e) => format!("could not keep the failing input ({e}): {bytes:?}"),
    }
}

/// One edit of a file's bytes. Positions are raw draws, reduced modulo the length when applied.
#[derive(Debug, Clone)]
enum Mutation {
    /// Keep only the first part.
    Truncate(usize),
    /// XOR one byte anywhere.
    Flip(usize, u8),
    /// XOR one byte in the last 10% (the Parquet footer and its length).
    FlipTail(usize, u8),
    /// Overwrite 1..8 bytes in the tail with 0xFF (huge varints and sizes in the footer).
    HugeTail(usize, u8),
    /// Overwrite the 4-byte footer length (before `PAR1`) with a value.
    FooterLen(u32),
    /// Insert bytes anywhere.
    Insert(usize, Vec<u8>),
    /// Remove a run of bytes.
    Delete(usize, u8),
}

fn mutation(r: &mut Rng) -> Mutation {
    let at = r.next() as usize;
    match r.below(7) {
        0 => Mutation::Truncate(at),
        1 => Mutation::Flip(at, r.between(1, 255) as u8),
        2 => Mutation::FlipTail(at, r.between(1, 255) as u8),
        3 => Mutation::HugeTail(at, r.between(1, 8) as u8),
        4 => Mutation::FooterLen(match r.below(4) {
            0 => u32::MAX,
            1 => i32::MAX as u32,
            2 => r.next() as u32,
            _ => r.below(64) as u32,
        }),
        5 => {
            let n = r.between(1, 11);
            let bytes = (0..n)
                .map(|_| match r.below(6) {
                    0 => r.byte(),
                    1 => b',',
                    2 => b'\n',
                    3 => b'"',
                    4 => b'{',
                    _ => 0xFF,
                })
                .collect();
            Mutation::Insert(at, bytes)
        }
        _ => Mutation::Delete(at, r.between(1, 64) as u8),
    }
}

/// `lo..hi` mutations.
fn edits_between(r: &mut Rng, lo: u64, hi: u64) -> Vec<Mutation> {
    let n = lo + r.below(hi - lo);
    (0..n).map(|_| mutation(r)).collect()
}

/// 1..4 mutations.
fn edits(r: &mut Rng) -> Vec<Mutation> {
    edits_between(r, 1, 4)
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    if data.is_empty() {
        return;
    }
    let len = data.len();
    let tail_start = len - (len / 10).max(1);
    match m {
        Mutation::Truncate(i) => data.truncate(i % len),
        Mutation::Flip(i, x) => data[i % len] ^= x,
        Mutation::FlipTail(i, x) => data[tail_start + i % (len - tail_start)] ^= x,
        Mutation::HugeTail(i, n) => {
            let at = tail_start + i % (len - tail_start);
            for b in data.iter_mut().skip(at).take(*n as usize) {
                *b = 0xFF;
            }
        }
        Mutation::FooterLen(v) if len >= 8 => {
            data[len - 8..len - 4].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::FooterLen(_) => {}
        Mutation::Insert(i, bytes) => {
            let at = i % (len + 1);
            data.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let at = i % len;
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

/// Fails the case unless `err` is one line without a hidden panic.
fn check_error(err: &str, input: &str) -> Result<(), String> {
    ensure!(!err.contains('\n'), "multi-line error for {input}: {err}");
    ensure!(
        !err.to_lowercase().contains("panic"),
        "hidden panic for {input}: {err}"
    );
    ensure!(!err.trim().is_empty(), "empty error for {input}");
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
    fn load(&self, path: &Path) -> Result<(), String> {
        let t = self.fresh_table();
        let result = self
            .rt
            .block_on(self.ws.load_dataset(&t, path, false, &NoProgress));
        if let Err(e) = result {
            check_error(&e.to_string(), &path.display().to_string())?;
            ensure!(
                self.ws.catalog().get_table(&t).unwrap().is_none(),
                "failed load of {} left table {t}: {e}",
                path.display()
            );
            ensure!(
                !self.ws.table_dir(&t).exists(),
                "failed load of {} left {}",
                path.display(),
                self.ws.table_dir(&t).display()
            );
        }
        Ok(())
    }
}

/// Adds where the failing bytes were kept to a failure.
fn keeping<T>(name: &str, bytes: &[u8], result: Result<T, String>) -> Result<T, String> {
    result.map_err(|why| format!("{why} ({})", keep(name, bytes)))
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
    fuzz("parquet_load", n, edits, |e| {
        let bytes = mutated(&seed, e);
        let path = f.source("data.parquet", &bytes);
        keeping("data.parquet", &bytes, f.load(&path))
    });
}

fn parquet_adopt(n: u32) {
    let f = Fixture::new();
    let seed = base_parquet(&f);
    fuzz("parquet_adopt", n, edits, |e| {
        let bytes = mutated(&seed, e);
        let path = f.source("part-0.parquet", &bytes);
        let dir = path.parent().unwrap();
        let result =
            f.rt.block_on(f.ws.adopt_layout(&table("base"), &dir.to_string_lossy(), &NoProgress));
        if let Err(err) = result {
            keeping(
                "part-0.parquet",
                &bytes,
                check_error(&err.to_string(), &dir.display().to_string()),
            )?;
        }
        Ok(())
    });
}

fn csv_load(n: u32) {
    let f = Fixture::new();
    let seed = seed("seed.csv");
    // CSV edits: ragged rows, stray quotes, invalid UTF-8, on top of byte mutations.
    let generate = |r: &mut Rng| (edits_between(r, 0, 3), r.next() as usize, r.below(5));
    fuzz("csv_load", n, generate, |(e, at, kind)| {
        let data = mutated(&seed, e);
        let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        let i = at % lines.len().max(1);
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
        let path = f.source("data.csv", &out);
        keeping("data.csv", &out, f.load(&path))
    });
}

fn import_sql(n: u32) {
    let f = Fixture::new();
    let seed = seed("seed.sql");
    fuzz("import_sql", n, edits, |e| {
        let bytes = mutated(&seed, e);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = split_sql(text);
        }
        import_named(&f, "log.sql", &bytes, ImportFormat::Sql)
    });
}

/// Imports `bytes` as the file `name`: it imports, or refuses with a one-line error that
/// names the file.
fn import_named(f: &Fixture, name: &str, bytes: &[u8], format: ImportFormat) -> Result<(), String> {
    let path = f.source(name, bytes);
    if let Err(err) = f.ws.import_queries(&import_options(&path, format)) {
        let msg = err.to_string();
        let checked = check_error(&msg, &path.display().to_string()).and_then(|()| {
            ensure!(msg.contains(name), "error does not name the file: {msg}");
            Ok(())
        });
        keeping(name, bytes, checked)?;
    }
    Ok(())
}

/// `import-queries` of `path` into `base` (engine names `analytics.events` mapped onto it).
fn import_options(path: &Path, format: ImportFormat) -> ImportOptions {
    ImportOptions {
        input: ImportInput::File(path.to_path_buf()),
        table: Some(table("base")),
        format,
        dialect: None,
        table_map: vec![("analytics.events".into(), table("base"))],
        since_ms: None,
        zone: Zone::default(),
        skip_bad_lines: false,
    }
}

/// A real ClickHouse query log (TSVWithNames), mutated: detected or refused naming the file.
fn import_log(n: u32) {
    let f = Fixture::new();
    let seed = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/querylogs/clickhouse_query_log.tsv"),
    )
    .unwrap();
    fuzz("import_log", n, edits, |e| {
        let bytes = mutated(&seed, e);
        import_named(&f, "query_log.tsv", &bytes, ImportFormat::Auto)
    });
}

/// Numbers that break arithmetic: extremes, zero, negatives, NaN-ish text.
fn nasty_number(r: &mut Rng) -> String {
    const FIXED: [&str; 9] = [
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "1.7976931348623157e308",
        "-1.7976931348623157e308",
        "nan",
        "inf",
        "1e-320",
    ];
    match r.below(11) {
        9 => r.between(-1000, 999).to_string(),
        10 => (r.next() as i64).to_string(),
        k => FIXED[k as usize].to_string(),
    }
}

fn nasty_width_one(r: &mut Rng) -> String {
    match r.below(7) {
        0 => "99999999999999999d".to_string(),
        1 => "9223372036854775807m".to_string(),
        2 => "6405119470038038h".to_string(),
        3 => "0d".to_string(),
        4 => format!("{}d", r.below(100_000_000_000)),
        5 => format!("{}h", r.below(1000)),
        _ => format!("{}m", r.next()),
    }
}

fn nasty_width(r: &mut Rng) -> String {
    if r.below(2) == 0 {
        nasty_width_one(r)
    } else {
        let a = nasty_width_one(r);
        let b = nasty_width_one(r);
        format!("{a}..{b}")
    }
}

fn nasty_date(r: &mut Rng) -> String {
    const FIXED: [&str; 6] = [
        "2025-01-01",
        "2025-12-31 23:59:59",
        "+262142-12-31",
        "-262143-01-01",
        "0001-01-01",
        "9999-12-31",
    ];
    match r.below(7) {
        6 => format!(
            "{:04}-{:02}-{:02}",
            r.between(1, 9998),
            r.between(1, 12),
            r.between(1, 28)
        ),
        k => FIXED[k as usize].to_string(),
    }
}

/// A structured template file with hostile parameter values.
fn template_text(r: &mut Rng) -> String {
    let (i1, i2, f1, f2) = (
        nasty_number(r),
        nasty_number(r),
        nasty_number(r),
        nasty_number(r),
    );
    let (d1, d2, w1, w2) = (nasty_date(r), nasty_date(r), nasty_width(r), nasty_width(r));
    let (exp, weight) = (nasty_number(r), nasty_number(r));
    format!(
        "[[template]]\nname = \"a\"\nweight = {weight}\nsql = \"SELECT {{i}}, {{f}}, {{d.start}}, {{d.end}}, {{t.start}}, {{t.end}}, {{z}} FROM {{table}}\"\n[template.params]\ni = {{ type = \"int\", min = {i1}, max = {i2} }}\nf = {{ type = \"float\", min = {f1}, max = {f2}, decimals = 18446744073709551615 }}\nd = {{ type = \"date_range\", from = \"{d1}\", to = \"{d2}\", width = \"{w1}\" }}\nt = {{ type = \"timestamp_range\", from = \"{d1}\", to = \"{d2}\", width = \"{w2}\" }}\nz = {{ type = \"zipf\", column = \"id\", exponent = {exp}, max_values = 18446744073709551615 }}\n"
    )
}

fn render_templates(text: &str) -> Result<(), String> {
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
                ensure!(!q.sql.is_empty(), "empty query from {text}");
            }
        }
        Err(e) => {
            let msg = e.to_string();
            check_error(&msg, text)?;
            ensure!(
                msg.starts_with("w.toml"),
                "error does not name the file: {msg}"
            );
        }
    }
    Ok(())
}

fn workload_toml(n: u32) {
    let seed = seed("seed.toml");
    fuzz(
        "workload_toml (mutated)",
        n,
        |r| String::from_utf8_lossy(&mutated(&seed, &edits(r))).into_owned(),
        |text| render_templates(text),
    );
    fuzz("workload_toml (hostile values)", n, template_text, |text| {
        render_templates(text)
    });
}

/// `dbopt.toml` mutated, and every key given a hostile value.
fn config_file(n: u32) {
    let seed = seed("seed_dbopt.toml");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbopt.toml");
    let resolve = |file: &Path, flags: &[(&str, String, &str)]| -> Result<(), String> {
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
    fuzz(
        "config (mutated dbopt.toml)",
        n,
        |r| mutated(&seed, &edits(r)),
        |bytes| {
            std::fs::write(&file, bytes).unwrap();
            keeping("dbopt.toml", bytes, resolve(&file, &[]))
        },
    );
    let keys: Vec<&str> = dbopt_core::config::KEYS.iter().map(|k| k.name).collect();
    let value = |r: &mut Rng| match r.below(6) {
        0 => nasty_number(r),
        1 => nasty_width(r),
        2 => "1e400".to_string(),
        3 => String::new(),
        4 => "99999999999999999999GiB".to_string(),
        _ => {
            let n = r.below(12);
            (0..n).map(|_| r.pick(b"abcmshz0129.-") as char).collect()
        }
    };
    std::fs::write(&file, "").unwrap();
    fuzz(
        "config (hostile flag values)",
        n,
        |r| (r.pick(&keys), value(r)),
        |(key, v)| resolve(&file, &[(key, v.clone(), "--flag")]),
    );
}

/// Manifests dbopt wrote, edited: parsed alone, then read back by a query on the table.
fn manifest(n: u32) {
    let f = Fixture::new();
    let dir =
        f.ws.layout_dir(&table("base"), &dbopt_core::LayoutId::initial());
    let path = dir.join("_dbopt_layout.json");
    let seed = std::fs::read(&path).unwrap();
    let corpus_manifest = self::seed("seed_manifest.json");
    fuzz("manifest", n, edits, |e| {
        let bytes = mutated(&seed, e);
        let parsed_alone = mutated(&corpus_manifest, e);
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
            keeping(
                "_dbopt_layout.json",
                &bytes,
                check_error(&err.to_string(), "manifest"),
            )?;
        }
        Ok(())
    });
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
fn hostile_import_log() {
    import_log(cases(64));
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
    // A queued job whose plan was edited into garbage (the catalog stores plans as text).
    assert_eq!(ws.catalog().list_tables().unwrap().len(), 1);
    ws.catalog()
        .enqueue_job(&NewJob {
            table: TableName::new("base").unwrap(),
            source_layout: LayoutId::initial(),
            target_layout: LayoutId::parse("00000000000000aa").unwrap(),
            spec: LayoutSpec::default(),
            plan_json: "not json".into(),
            mode: MigrationMode::Full,
            activate: false,
            units_total: 0,
        })
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
    let logged: String = common::logged_queries(&ws)
        .into_iter()
        .filter(|q| q.entry.sql.contains("base e"))
        .filter_map(|q| q.entry.error)
        .max()
        .unwrap_or_default();
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
