//! One client connection's handlers: startup (trust on loopback, SCRAM-SHA-256 with a
//! password), the simple query protocol (several statements per message) and the extended one
//! (parse, describe, bind with parameters, execute). Statements go to the connection's
//! [`Executor`]; a cancel request (pgwire drops the statement's future) or a client that hangs
//! up mid-query cancels the query.

use crate::encode;
use crate::executor::{Executor, ExecutorFactory};
use crate::statement::{Statement, classify};
use async_trait::async_trait;
use dbopt_engine::bind_parameters;
use futures::Sink;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{DefaultServerParameterProvider, StartupHandler};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldInfo, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::watch;

/// A statement prepared by a client (extended protocol), planned once at Parse.
#[derive(Debug, Clone)]
pub struct Prepared {
    statement: Statement,
    params: Vec<Type>,
    schema: Option<arrow::datatypes::SchemaRef>,
}

/// How clients authenticate.
#[derive(Clone)]
pub enum Auth {
    /// No password (loopback only).
    Trust,
    /// SCRAM-SHA-256 against the configured user and password.
    Scram(Arc<crate::auth::ScramConfig>),
}

/// The handlers of one connection.
pub struct Connection {
    /// Started at the first statement (a cancel request's connection never needs one).
    executor: tokio::sync::OnceCell<Executor>,
    factory: ExecutorFactory,
    seed: u64,
    auth: Auth,
    manager: Arc<ConnectionManager>,
    /// Becomes true when the client's socket closes.
    hung_up: watch::Receiver<bool>,
}

impl Connection {
    /// Handlers for one client, whose query thread `factory` starts; `hung_up` turns true
    /// when its socket closes.
    pub fn new(
        factory: ExecutorFactory,
        seed: u64,
        auth: Auth,
        manager: Arc<ConnectionManager>,
        hung_up: watch::Receiver<bool>,
    ) -> Arc<Self> {
        Arc::new(Self {
            executor: tokio::sync::OnceCell::new(),
            factory,
            seed,
            auth,
            manager,
            hung_up,
        })
    }

    async fn executor(&self) -> PgWireResult<&Executor> {
        self.executor
            .get_or_try_init(|| async { self.factory.start(self.seed) })
            .await
            .map_err(|e| encode::db_error(&e))
    }

    /// Runs one statement; a query is cancelled by a cancel request or a hang-up.
    async fn execute(&self, statement: &Statement, format: &Format) -> PgWireResult<Response> {
        match statement {
            Statement::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Statement::End(tag) => Ok(Response::TransactionEnd(Tag::new(tag))),
            Statement::Accepted(tag) => Ok(encode::tag(tag)),
            Statement::Show { name, value } => encode::single_value(name, value),
            Statement::Query(sql) => {
                let executor = self.executor().await?;
                let outcome = self.cancellable(executor.run(sql.clone())).await?;
                encode::rows(outcome, format)
            }
        }
    }

    /// Awaits `work` unless the client hangs up first. (A cancel request is pgwire's: it
    /// drops the statement's future, which drops `work`.)
    async fn cancellable<T>(
        &self,
        work: impl Future<Output = Result<T, dbopt::DbError>>,
    ) -> PgWireResult<T> {
        let mut hung_up = self.hung_up.clone();
        tokio::select! {
            result = work => result.map_err(|e| encode::db_error(&e)),
            _ = hung_up.wait_for(|gone| *gone) => Err(encode::user_error("08006", "the client hung up")),
        }
    }

    /// Plans `sql` for Parse.
    async fn prepare(&self, sql: &str, client_types: &[Option<Type>]) -> PgWireResult<Prepared> {
        let statement = classify(sql);
        let Statement::Query(query) = &statement else {
            let schema = match &statement {
                Statement::Show { name, .. } => {
                    Some(Arc::new(arrow::datatypes::Schema::new(vec![
                        arrow::datatypes::Field::new(name, arrow::datatypes::DataType::Utf8, false),
                    ])))
                }
                _ => None,
            };
            return Ok(Prepared {
                statement,
                params: Vec::new(),
                schema,
            });
        };
        let description = self
            .executor()
            .await?
            .describe(query.clone())
            .await
            .map_err(|e| encode::db_error(&e))?;
        let params = description
            .params
            .iter()
            .enumerate()
            .map(|(i, inferred)| {
                client_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| encode::param_type(inferred.as_ref()))
            })
            .collect();
        let schema = (!description.schema.fields().is_empty()).then_some(description.schema);
        Ok(Prepared {
            statement,
            params,
            schema,
        })
    }
}

#[async_trait]
impl NoopStartupHandler for Connection {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.manager.clone())
    }
}

/// Startup: trust or SCRAM, both registering the connection for cancel requests.
pub struct Startup {
    connection: Arc<Connection>,
    scram: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match &self.scram {
            Some(scram) => scram.on_startup(client, message).await,
            None => self.connection.on_startup(client, message).await,
        }
    }
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, _client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = dbopt_data::workload_spec::split_sql(query);
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for s in statements {
            // PostgreSQL stops a multi-statement message at its first error.
            match self.execute(&classify(&s.sql), &Format::UnifiedText).await {
                Ok(r) => responses.push(r),
                Err(PgWireError::UserError(info)) => {
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

/// Parse-time planning for the extended protocol.
pub struct Parser {
    connection: Arc<Connection>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let sql = sql.trim().trim_end_matches(';').trim();
        if sql.is_empty() {
            return Ok(None);
        }
        self.connection.prepare(sql, types).await.map(Some)
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt.params.clone())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match &stmt.schema {
            Some(schema) => encode::fields(schema, column_format.unwrap_or(&Format::UnifiedText)),
            None => Ok(Vec::new()),
        }
    }
}

/// The extended-protocol side of a connection.
pub struct Extended {
    connection: Arc<Connection>,
    parser: Arc<Parser>,
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let statement = match &prepared.statement {
            Statement::Query(sql) => {
                let values = encode::params(portal, &prepared.params)?;
                let bound = bind_parameters(sql, &values)
                    .map_err(|e| encode::db_error(&dbopt::DbError::from(e)))?;
                Statement::Query(bound)
            }
            other => other.clone(),
        };
        self.connection
            .execute(&statement, &portal.result_column_format)
            .await
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Prepared>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &target.statement;
        let fields = self.parser.get_result_schema(prepared, None)?;
        Ok(DescribeStatementResponse::new(
            prepared.params.clone(),
            fields,
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.parser.get_result_schema(
            &portal.statement.statement,
            Some(&portal.result_column_format),
        )?;
        Ok(DescribePortalResponse::new(fields))
    }
}

/// Everything pgwire asks of one connection.
pub struct Handlers {
    startup: Arc<Startup>,
    connection: Arc<Connection>,
    extended: Arc<Extended>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    /// The handlers of `connection`.
    pub fn new(connection: Arc<Connection>) -> Self {
        let scram = match &connection.auth {
            Auth::Trust => None,
            Auth::Scram(config) => Some(
                SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
                    .with_scram(config.scram_auth())
                    .with_connection_manager(connection.manager.clone()),
            ),
        };
        let parser = Arc::new(Parser {
            connection: connection.clone(),
        });
        Self {
            startup: Arc::new(Startup {
                connection: connection.clone(),
                scram,
            }),
            extended: Arc::new(Extended {
                connection: connection.clone(),
                parser,
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connection.manager.clone())),
            connection,
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.connection.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}
