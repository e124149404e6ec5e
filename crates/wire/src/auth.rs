//! Password authentication for the SQL endpoint: SCRAM-SHA-256 (what psql, libpq, psycopg,
//! JDBC and tokio-postgres speak by default), with channel binding when TLS is on. The
//! password is salted and hashed once at startup; only the hash is kept.

use async_trait::async_trait;
use pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, ScramAuth, gen_salted_password};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;
use std::sync::Arc;

/// The one user the endpoint accepts and its salted password.
#[derive(Debug)]
pub struct ScramConfig {
    user: String,
    salt: Vec<u8>,
    salted: Vec<u8>,
    /// PEM certificate chain, for channel binding when TLS is on.
    certificate: Option<Vec<u8>>,
}

impl ScramConfig {
    /// `user` with `password`; `certificate` is the TLS certificate chain (PEM) when TLS is on.
    pub fn new(user: &str, password: &str, certificate: Option<Vec<u8>>) -> Self {
        let salt: [u8; 16] = rand::random();
        Self {
            user: user.to_string(),
            salted: gen_salted_password(password, &salt, SCRAM_ITERATIONS),
            salt: salt.to_vec(),
            certificate,
        }
    }

    /// A SCRAM authenticator for one connection.
    pub fn scram_auth(self: &Arc<Self>) -> ScramAuth {
        let mut auth = ScramAuth::new(Arc::new(Source(self.clone())));
        auth.set_iterations(SCRAM_ITERATIONS);
        if let Some(pem) = &self.certificate
            && let Err(e) = auth.configure_certificate(pem)
        {
            tracing::warn!("SCRAM channel binding is off: {e}");
        }
        auth
    }
}

#[derive(Debug)]
struct Source(Arc<ScramConfig>);

#[async_trait]
impl AuthSource for Source {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        if login.user() == Some(self.0.user.as_str()) {
            return Ok(Password::new(
                Some(self.0.salt.clone()),
                self.0.salted.clone(),
            ));
        }
        // Another user name fails like a wrong password: a random key nobody can match.
        let salt: [u8; 16] = rand::random();
        let key: [u8; 32] = rand::random();
        Ok(Password::new(Some(salt.to_vec()), key.to_vec()))
    }
}
