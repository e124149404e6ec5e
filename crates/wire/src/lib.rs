//! dbopt-wire: the PostgreSQL-wire SQL endpoint of `dbopt serve --sql-addr`.
//!
//! psql, psycopg, JDBC, tokio-postgres and any other PostgreSQL client can connect and run
//! read-only SQL over the simple and the extended query protocols. Every statement takes the
//! path `dbopt query` takes (read-only guard, routing across the table's live layouts,
//! execution, a row in the query log with origin `sql`), so the workload dbopt learns from is
//! the traffic its clients send.
//!
//! Layers: [`server`] binds and accepts, [`handler`] speaks the protocol for one connection,
//! [`executor`] runs that connection's statements on a thread of its own, [`encode`] maps Arrow
//! results, parameters and errors to the wire, [`statement`] answers driver session commands
//! (`BEGIN`, `SET`, `SHOW`), and [`auth`] checks passwords (SCRAM-SHA-256).

pub mod auth;
pub mod encode;
pub mod executor;
pub mod handler;
pub mod server;
pub mod statement;

pub use server::SqlServer;
