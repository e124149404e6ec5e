//! dbopt-testkit: temporary workspaces and a runner for the real `dbopt` binary, shared by the
//! end-to-end tests (a dev-dependency only).

use dbopt_catalog::Catalog;
use dbopt_core::SystemClock;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

/// Where SQLite keeps `PRAGMA user_version` in a database file: a 4-byte big-endian integer at
/// byte 60 of the file header (sqlite.org/fileformat2.html, "The Database Header").
const USER_VERSION_OFFSET: u64 = 60;

/// A temporary directory holding a data directory and a catalog, removed on drop.
pub struct TempWorkspace {
    root: tempfile::TempDir,
    /// Environment every command gets after the workspace's own (`with_env`).
    env: Vec<(String, String)>,
}

impl Default for TempWorkspace {
    fn default() -> Self {
        Self::new()
    }
}

impl TempWorkspace {
    /// A fresh empty workspace.
    pub fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("dbopt-test-")
                .tempdir()
                .expect("a temp dir can be created"),
            env: Vec::new(),
        }
    }

    /// This workspace with `env` set on every command after its own variables, so an entry
    /// wins over them (`DATA_DIR=s3://...` puts the layouts on object storage).
    pub fn with_env(mut self, env: &[(&str, &str)]) -> Self {
        self.env.extend(
            env.iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        self
    }

    /// The workspace root (the working directory of commands).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// DATA_DIR of the workspace.
    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    /// METADATA_DB of the workspace.
    pub fn metadata_db(&self) -> PathBuf {
        self.root().join("metadata.db")
    }

    /// The workspace's catalog, opened through its typed API, for assertions.
    pub fn catalog(&self) -> Catalog {
        Catalog::open(&self.metadata_db(), Arc::new(SystemClock)).expect("the catalog opens")
    }

    /// Tampers with the catalog on purpose: overwrites the schema version stored in the file
    /// header, as a newer dbopt would have left it. Deliberately below the catalog's API (which
    /// never writes a version it does not know) and without SQLite: it edits the header bytes,
    /// so it needs a catalog no process has open (every dbopt command has exited, which
    /// checkpoints and removes the write-ahead log).
    pub fn write_catalog_schema_version(&self, version: u32) {
        self.assert_no_write_ahead_log();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.metadata_db())
            .expect("the catalog file opens for writing");
        file.seek(SeekFrom::Start(USER_VERSION_OFFSET))
            .and_then(|_| file.write_all(&version.to_be_bytes()))
            .and_then(|_| file.sync_all())
            .expect("the catalog header is writable");
    }

    /// The schema version stored in the catalog file header, read without opening the catalog
    /// (which could migrate it); see `write_catalog_schema_version`.
    pub fn read_catalog_schema_version(&self) -> u32 {
        self.assert_no_write_ahead_log();
        let mut file = std::fs::File::open(self.metadata_db()).expect("the catalog file opens");
        let mut bytes = [0u8; 4];
        file.seek(SeekFrom::Start(USER_VERSION_OFFSET))
            .and_then(|_| file.read_exact(&mut bytes))
            .expect("the catalog header is readable");
        u32::from_be_bytes(bytes)
    }

    /// Panics unless the catalog's write-ahead log is gone or empty (the header bytes in the
    /// main file are then the current ones).
    fn assert_no_write_ahead_log(&self) {
        let wal = PathBuf::from(format!("{}-wal", self.metadata_db().display()));
        let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert_eq!(
            len,
            0,
            "{} holds frames: a process still has the catalog open",
            wal.display()
        );
    }

    /// A command for `bin` running in the workspace with its DATA_DIR and METADATA_DB, and no
    /// other dbopt configuration inherited from the environment.
    pub fn command(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        for (key, _) in std::env::vars() {
            if key.starts_with("DBOPT_")
                || [
                    "DATA_DIR",
                    "METADATA_DB",
                    "EXPLORATION_RATE",
                    "ALPHA",
                    "BETA",
                ]
                .contains(&key.as_str())
            {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.root())
            .env("DATA_DIR", self.data_dir())
            .env("METADATA_DB", self.metadata_db())
            .env("DBOPT_THREADS", "2")
            .env("DBOPT_MEMORY_LIMIT", "512MiB")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Runs `bin` with `args` in the workspace and captures its output.
    pub fn run(&self, bin: &Path, args: &[&str]) -> Run {
        let output = self
            .command(bin)
            .args(args)
            .output()
            .expect("the dbopt binary can be started");
        Run {
            args: args.iter().map(std::string::ToString::to_string).collect(),
            output,
        }
    }
}

/// The captured result of one command.
pub struct Run {
    args: Vec<String>,
    /// What the process produced.
    pub output: Output,
}

impl Run {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).to_string()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).to_string()
    }

    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Panics with the command's output unless it exited 0; returns stdout.
    pub fn success(&self) -> String {
        assert_eq!(
            self.code(),
            Some(0),
            "dbopt {:?} failed\nstdout:\n{}\nstderr:\n{}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self.stdout()
    }

    /// Panics unless the command failed with exit code 2, a one-line error containing
    /// `needle`, and no panic; returns the error line.
    pub fn user_error(&self, needle: &str) -> String {
        let stderr = self.stderr();
        assert_eq!(
            self.code(),
            Some(2),
            "dbopt {:?} should exit 2\nstdout:\n{}\nstderr:\n{stderr}",
            self.args,
            self.stdout()
        );
        assert!(
            !stderr.contains("panicked"),
            "panic in {:?}: {stderr}",
            self.args
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(
            lines.len(),
            1,
            "one error line expected for {:?}: {stderr}",
            self.args
        );
        assert!(
            lines[0].to_lowercase().contains(&needle.to_lowercase()),
            "error for {:?} should mention '{needle}': {}",
            self.args,
            lines[0]
        );
        lines[0].to_string()
    }
}
