//! How the store and the migrations connect: the URL parsed once by tokio-postgres's own
//! parser, TLS through rustls as the URL's `sslmode` asks, and per-session limits sent in the
//! startup packet so that no statement, lock wait or forgotten transaction can hold a
//! connection (or a row lock) for ever.
//!
//! `sslmode` follows libpq:
//!
//! | `sslmode` | encrypted | certificate checked |
//! | --- | --- | --- |
//! | `disable` | no | - |
//! | `prefer` (the default) | when the server offers TLS | no |
//! | `require` | yes | no; as `verify-ca` when `sslrootcert` is given |
//! | `verify-ca` | yes | chains to a trusted root |
//! | `verify-full` | yes | chains to a trusted root and names the host |
//!
//! The trusted roots are `sslrootcert` (a PEM file) or, without it or with
//! `sslrootcert=system`, the Mozilla root set compiled in (`webpki-roots`, as the Stripe
//! client uses). `allow` and client certificates (`sslcert`, `sslkey`) are refused. The
//! extended modes need the URL form (`postgres://...?sslmode=verify-full`); the `key=value`
//! form knows `disable`, `prefer` and `require` only.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::connection::InstrumentationEvent;
use diesel::ConnectionError;
use diesel_async::pooled_connection::PoolError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use lms_ports::{Context, RepoError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The variable the URL comes from, named in configuration errors.
const URL_VARIABLE: &str = "DATABASE_URL";

/// tokio-postgres's keepalive idle time when the URL says nothing (two hours, the kernel's
/// default): seeing it means the URL did not choose one.
const TOKIO_POSTGRES_DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// Limits applied to every connection the store (or a migration) opens. A value set in the
/// URL itself (`connect_timeout`, `keepalives_*`, `tcp_user_timeout`, `-c` settings in
/// `options`) wins over the one here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConnectionOptions {
    /// `statement_timeout` of the store's sessions: a statement running longer is cancelled
    /// by the server (the caller sees [`RepoError::Unexpected`]). Zero: no limit. Default 15 s.
    pub statement_timeout: Duration,
    /// `lock_timeout`: a statement waiting longer for a lock is cancelled. Zero: no limit.
    /// Default 5 s.
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: a session idle inside a transaction for longer
    /// is closed by the server, releasing its locks. Zero: no limit. Default 30 s.
    pub idle_in_transaction_timeout: Duration,
    /// `statement_timeout` of a migration's session, which may rewrite or index a large
    /// table; its lock and idle limits are the ones above. Zero: no limit. Default 10 min.
    pub migration_statement_timeout: Duration,
    /// The whole connection set-up (TCP, TLS, authentication, session settings) must finish
    /// within this. Zero: no limit. Default 10 s.
    pub connect_timeout: Duration,
    /// TCP keepalive: idle time before the first probe. Default 30 s.
    pub keepalives_idle: Duration,
    /// TCP keepalive: time between probes. Default 10 s.
    pub keepalives_interval: Duration,
    /// TCP keepalive: unanswered probes before the connection is dropped. Default 3.
    pub keepalives_retries: u32,
    /// `TCP_USER_TIMEOUT` (Linux): sent data left unacknowledged this long drops the
    /// connection, so a vanished server is noticed mid-query. Zero: the system's default.
    /// Default 30 s.
    pub tcp_user_timeout: Duration,
}

impl Default for PgConnectionOptions {
    fn default() -> Self {
        Self {
            statement_timeout: Duration::from_secs(15),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(30),
            migration_statement_timeout: Duration::from_secs(10 * 60),
            connect_timeout: Duration::from_secs(10),
            keepalives_idle: Duration::from_secs(30),
            keepalives_interval: Duration::from_secs(10),
            keepalives_retries: 3,
            tcp_user_timeout: Duration::from_secs(30),
        }
    }
}

/// What the session is for; decides its `statement_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Pool,
    Migration,
}

/// libpq's `sslmode` values this crate honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, RepoError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(config_error(
                    "sslmode=allow is not supported (use disable, prefer, require, verify-ca or verify-full)",
                ))
            }
            other => {
                return Err(config_error(&format!(
                    "unknown sslmode {other:?} (expected disable, prefer, require, verify-ca or verify-full)"
                )))
            }
        })
    }
}

fn config_error(message: &str) -> RepoError {
    RepoError::unexpected(format!("{URL_VARIABLE}: {message}"))
}

/// Checks a URL the way every connection will read it (syntax, `sslmode`, `sslrootcert`)
/// without connecting, so configuration can refuse it before anything starts.
///
/// # Errors
/// As [`ConnectSpec::parse`]: [`RepoError::Unexpected`] naming `DATABASE_URL`, never echoing
/// the URL.
pub fn check_database_url(url: &str) -> Result<(), RepoError> {
    ConnectSpec::parse(url, &PgConnectionOptions::default(), Purpose::Pool).map(|_| ())
}

/// Everything needed to open one connection; parsed once, used for every connection of a
/// pool.
#[derive(Clone)]
pub(crate) struct ConnectSpec {
    /// Only for diesel's instrumentation, which is told the URL of each new connection.
    url: String,
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    timeout: Option<Duration>,
    ssl_mode: SslMode,
}

impl fmt::Debug for ConnectSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the config: it holds the password.
        f.debug_struct("ConnectSpec")
            .field("ssl_mode", &self.ssl_mode)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ConnectSpec {
    /// Parses `url` and prepares TLS.
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] naming `DATABASE_URL` for an invalid URL, an unknown or
    /// unsupported `sslmode`, or an unreadable `sslrootcert`. The URL is never echoed.
    pub(crate) fn parse(
        url: &str,
        options: &PgConnectionOptions,
        purpose: Purpose,
    ) -> Result<Self, RepoError> {
        let (rest, tls_params) = split_tls_params(url)?;
        let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| parse_error(&e))?;
        let mut ssl_mode = match tls_params.sslmode.as_deref() {
            Some(value) => SslMode::parse(value)?,
            None => match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => SslMode::Disable,
                tokio_postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
        };
        if ssl_mode == SslMode::Require && tls_params.sslrootcert.is_some() {
            // As libpq: a root certificate given means it is to be checked.
            ssl_mode = SslMode::VerifyCa;
        }
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        apply_session_settings(&mut config, options, purpose);
        apply_socket_options(&mut config, options);
        let tls =
            MakeRustlsConnect::new(client_config(ssl_mode, tls_params.sslrootcert.as_deref())?);
        let timeout = config
            .get_connect_timeout()
            .copied()
            .or((!options.connect_timeout.is_zero()).then_some(options.connect_timeout));
        Ok(Self {
            url: url.to_owned(),
            config,
            tls,
            timeout,
            ssl_mode,
        })
    }

    /// Opens one connection.
    ///
    /// # Errors
    /// [`ConnectionError::BadConnection`] with the cause chain (refused, timed out, TLS
    /// handshake or certificate failure, authentication) when the server cannot be reached
    /// or refuses; the pool and [`crate::error::from_connection`] make it
    /// [`RepoError::Unavailable`].
    pub(crate) async fn establish(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let connect = async {
            let (client, connection) = self
                .config
                .connect(self.tls.clone())
                .await
                .map_err(|e| ConnectionError::BadConnection(with_causes(&e)))?;
            let mut connection =
                AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
            // What diesel's own `establish` reports, so instrumentation sees these
            // connections like any other.
            let instrumentation = connection.instrumentation();
            instrumentation
                .on_connection_event(InstrumentationEvent::start_establish_connection(&self.url));
            instrumentation.on_connection_event(InstrumentationEvent::finish_establish_connection(
                &self.url, None,
            ));
            Ok(connection)
        };
        match self.timeout {
            Some(limit) => tokio::time::timeout(limit, connect)
                .await
                .unwrap_or_else(|_| {
                    Err(ConnectionError::BadConnection(format!(
                        "no connection within {} ms",
                        limit.as_millis()
                    )))
                }),
            None => connect.await,
        }
    }
}

/// An error and its causes on one line (tokio-postgres's own message names only the kind):
/// diesel's `ConnectionError::BadConnection`, which the pool's manager must return, holds
/// only text, so this is the one place a chain is written out rather than kept.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

/// tokio-postgres's parse error, passed on only when its cause names an option and nothing
/// from the URL's values (which may hold the password).
fn parse_error(error: &tokio_postgres::Error) -> RepoError {
    let cause = std::error::Error::source(error).map(ToString::to_string);
    match cause {
        Some(cause)
            if cause.starts_with("unknown option `")
                || cause.starts_with("invalid value for option `") =>
        {
            config_error(&format!("invalid connection string: {cause}"))
        }
        _ => config_error("invalid connection string"),
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (tokio-postgres knows neither
/// `verify-*` nor `sslrootcert`); returns the rest for tokio-postgres to parse. A
/// `key=value` connection string is returned as it is.
fn split_tls_params(url: &str) -> Result<(String, TlsParams), RepoError> {
    let mut params = TlsParams::default();
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_owned(), params));
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decode(key).as_deref() {
            Some("sslmode") => params.sslmode = Some(decoded(value, "sslmode")?),
            Some("sslrootcert") => params.sslrootcert = Some(decoded(value, "sslrootcert")?),
            Some(key @ ("sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir")) => {
                return Err(config_error(&format!("{key} is not supported")));
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, params))
}

fn decoded(value: &str, key: &str) -> Result<String, RepoError> {
    percent_decode(value)
        .ok_or_else(|| config_error(&format!("{key} is not valid percent-encoded UTF-8")))
}

/// `%XX` decoding of one query component; `None` for a bad escape or non-UTF-8 bytes.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Milliseconds for a `-c` setting, never rounding a non-zero limit down to 0 ("no limit").
fn millis(limit: Duration) -> u128 {
    let ms = limit.as_millis();
    if ms == 0 && !limit.is_zero() {
        1
    } else {
        ms
    }
}

/// The session limits as `-c` settings in the startup packet (no extra round trip); the
/// URL's own `options` come after them, so a `-c` there wins.
fn apply_session_settings(
    config: &mut tokio_postgres::Config,
    options: &PgConnectionOptions,
    purpose: Purpose,
) {
    let statement_timeout = match purpose {
        Purpose::Pool => options.statement_timeout,
        Purpose::Migration => options.migration_statement_timeout,
    };
    let mut settings = format!(
        "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
        millis(statement_timeout),
        millis(options.lock_timeout),
        millis(options.idle_in_transaction_timeout),
    );
    if let Some(own) = config.get_options().filter(|own| !own.trim().is_empty()) {
        settings.push(' ');
        settings.push_str(own);
    }
    config.options(settings);
}

/// Keepalives, the TCP user timeout and the connect timeout, where the URL chose none.
fn apply_socket_options(config: &mut tokio_postgres::Config, options: &PgConnectionOptions) {
    if config.get_connect_timeout().is_none() && !options.connect_timeout.is_zero() {
        config.connect_timeout(options.connect_timeout);
    }
    if config.get_tcp_user_timeout().is_none() && !options.tcp_user_timeout.is_zero() {
        config.tcp_user_timeout(options.tcp_user_timeout);
    }
    if !config.get_keepalives() {
        return;
    }
    if config.get_keepalives_idle() == TOKIO_POSTGRES_DEFAULT_KEEPALIVES_IDLE
        && !options.keepalives_idle.is_zero()
    {
        config.keepalives_idle(options.keepalives_idle);
    }
    if config.get_keepalives_interval().is_none() && !options.keepalives_interval.is_zero() {
        config.keepalives_interval(options.keepalives_interval);
    }
    if config.get_keepalives_retries().is_none() && options.keepalives_retries > 0 {
        config.keepalives_retries(options.keepalives_retries);
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The trusted roots: `sslrootcert`'s PEM certificates, or the compiled-in Mozilla set.
fn roots(sslrootcert: Option<&str>) -> Result<RootCertStore, RepoError> {
    let mut roots = RootCertStore::empty();
    match sslrootcert {
        None | Some("system") => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| config_error(&format!("sslrootcert {path}: {e}")))?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(config_error(&format!(
                    "sslrootcert {path} holds no usable certificate"
                )));
            }
        }
    }
    Ok(roots)
}

fn client_config(mode: SslMode, sslrootcert: Option<&str>) -> Result<ClientConfig, RepoError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| RepoError::unexpected(Context::new("TLS set-up failed", e)))?;
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly { provider })),
        SslMode::VerifyFull => builder.with_root_certificates(roots(sslrootcert)?),
        SslMode::VerifyCa => {
            let chain = WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(sslrootcert)?),
                provider,
            )
            .build()
            .map_err(|e| config_error(&format!("sslrootcert: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyHostName { chain }))
        }
    };
    Ok(config.with_no_client_auth())
}

/// `prefer`/`require`: encryption without authenticating the server, as libpq does. The
/// handshake's signatures are still checked, so the session key belongs to whoever holds the
/// presented certificate's key.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the host name is not compared. The
/// WebPKI verifier checks the name last, after the chain, so its name error alone is
/// forgiven.
#[derive(Debug)]
struct AnyHostName {
    chain: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// Why the pools could not open a connection: each failure is logged, and the latest is kept,
/// translated as any other (`from_pool`: an invalid URL's message, which may echo the URL, is
/// not passed on), because bb8 tells a caller only that none came in time.
/// [`ConnectionFailures::since`] gives that caller the reason (a schema dropped under the
/// running app: "relation … does not exist").
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionFailures {
    latest: Arc<Mutex<Option<Failure>>>,
}

/// When a connection could not be opened, and why.
type Failure = (Instant, Arc<RepoError>);

impl ConnectionFailures {
    /// The latest failure to open a connection, if it happened at or after `since`.
    pub(crate) fn since(&self, since: Instant) -> Option<Arc<RepoError>> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest
            .as_ref()
            .filter(|(at, _)| *at >= since)
            .map(|(_, error)| Arc::clone(error))
    }
}

impl bb8::ErrorSink<PoolError> for ConnectionFailures {
    fn sink(&self, error: PoolError) {
        tracing::warn!(%error, "could not open a PostgreSQL connection");
        let reason = crate::error::from_pool(bb8::RunError::User(error), None);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::new(reason)));
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

impl crate::PgStore {
    /// A connection from the store's own pool, configured like every other (TLS, session
    /// limits): for statements the ports do not offer, such as looking at the session itself.
    ///
    /// # Errors
    /// As any store call that needs a connection.
    pub async fn pooled_connection(
        &self,
    ) -> Result<
        diesel_async::pooled_connection::bb8::PooledConnection<'_, AsyncPgConnection>,
        RepoError,
    > {
        self.conn().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> Result<ConnectSpec, RepoError> {
        ConnectSpec::parse(url, &PgConnectionOptions::default(), Purpose::Pool)
    }

    fn message(error: RepoError) -> String {
        match error {
            RepoError::Unexpected(cause) => lms_ports::chain_text(&*cause),
            other => format!("not Unexpected: {other:?}"),
        }
    }

    #[test]
    fn sslmode_follows_libpq() {
        let mode = |url: &str| spec(url).map(|s| s.ssl_mode);
        assert_eq!(mode("postgres://h/db"), Ok(SslMode::Prefer));
        assert_eq!(
            mode("postgres://h/db?sslmode=disable"),
            Ok(SslMode::Disable)
        );
        assert_eq!(
            mode("postgres://h/db?sslmode=require"),
            Ok(SslMode::Require)
        );
        assert_eq!(
            mode("postgres://h/db?sslmode=verify-ca"),
            Ok(SslMode::VerifyCa)
        );
        assert_eq!(
            mode("postgresql://h/db?application_name=x&sslmode=verify-full"),
            Ok(SslMode::VerifyFull)
        );
        assert_eq!(mode("host=h sslmode=require"), Ok(SslMode::Require));
        assert_eq!(mode("host=h sslmode=disable"), Ok(SslMode::Disable));
    }

    #[test]
    fn unknown_or_unsupported_sslmodes_name_the_variable_and_the_parameter() {
        for url in [
            "postgres://u:hunter2@h/db?sslmode=bogus",
            "postgres://u:hunter2@h/db?sslmode=allow",
            "postgres://u:hunter2@h/db?sslmode=",
            "host=h password=hunter2 sslmode=verify-full",
        ] {
            let text = message(spec(url).unwrap_err());
            assert!(text.starts_with("DATABASE_URL: "), "{text}");
            assert!(text.contains("sslmode"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn client_certificates_and_bad_urls_are_refused_without_echoing_the_url() {
        let text = message(spec("postgres://u:hunter2@h/db?sslcert=/x.pem").unwrap_err());
        assert_eq!(text, "DATABASE_URL: sslcert is not supported");
        let text = message(spec("postgres://u:hunter2@h/db?nonsense=1").unwrap_err());
        assert_eq!(
            text,
            "DATABASE_URL: invalid connection string: unknown option `nonsense`"
        );
        let text = message(spec("postgres://u:hunter2@h:port/db").unwrap_err());
        assert!(!text.contains("hunter2"), "{text}");
        let text = message(
            spec("postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent.pem").unwrap_err(),
        );
        assert!(
            text.starts_with("DATABASE_URL: sslrootcert /nonexistent.pem"),
            "{text}"
        );
    }

    #[test]
    fn a_root_certificate_makes_require_check_the_chain() {
        // Any PEM certificate will do: a public root kept with the tests.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/isrg-root-x1.pem");
        let url = format!("postgres://h/db?sslmode=require&sslrootcert={path}");
        assert_eq!(spec(&url).map(|s| s.ssl_mode), Ok(SslMode::VerifyCa));
    }

    #[test]
    fn the_tls_params_leave_the_rest_of_the_query_alone() {
        let (rest, params) = split_tls_params(
            "postgres://u:p%3F@h/db?sslmode=verify-full&application_name=a%20b&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p%3F@h/db?application_name=a%20b");
        assert_eq!(
            params,
            TlsParams {
                sslmode: Some("verify-full".into()),
                sslrootcert: Some("/etc/ca.pem".into()),
            }
        );
        let (rest, _) = split_tls_params("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://h/db");
    }

    #[test]
    fn session_limits_go_in_the_startup_options_and_the_urls_own_come_last() {
        let options = PgConnectionOptions {
            statement_timeout: Duration::from_millis(1500),
            lock_timeout: Duration::from_micros(10),
            idle_in_transaction_timeout: Duration::ZERO,
            ..PgConnectionOptions::default()
        };
        let pool = ConnectSpec::parse(
            "postgres://h/db?options=-c%20work_mem%3D8MB",
            &options,
            Purpose::Pool,
        )
        .unwrap();
        assert_eq!(
            pool.config.get_options(),
            Some("-c statement_timeout=1500 -c lock_timeout=1 -c idle_in_transaction_session_timeout=0 -c work_mem=8MB")
        );
        let migration =
            ConnectSpec::parse("postgres://h/db", &options, Purpose::Migration).unwrap();
        assert_eq!(
            migration.config.get_options(),
            Some("-c statement_timeout=600000 -c lock_timeout=1 -c idle_in_transaction_session_timeout=0")
        );
    }

    #[test]
    fn socket_options_apply_unless_the_url_chose_its_own() {
        let defaults = spec("postgres://h/db").unwrap();
        assert_eq!(
            defaults.config.get_keepalives_idle(),
            Duration::from_secs(30)
        );
        assert_eq!(
            defaults.config.get_keepalives_interval(),
            Some(Duration::from_secs(10))
        );
        assert_eq!(defaults.config.get_keepalives_retries(), Some(3));
        assert_eq!(
            defaults.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(30))
        );
        assert_eq!(defaults.timeout, Some(Duration::from_secs(10)));

        let chosen =
            spec("postgres://h/db?keepalives_idle=7&connect_timeout=3&tcp_user_timeout=4").unwrap();
        assert_eq!(chosen.config.get_keepalives_idle(), Duration::from_secs(7));
        assert_eq!(chosen.timeout, Some(Duration::from_secs(3)));
        assert_eq!(
            chosen.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(4))
        );
    }

    #[test]
    fn the_spec_never_shows_the_password() {
        let text = format!("{:?}", spec("postgres://u:hunter2@h/db").unwrap());
        assert!(!text.contains("hunter2"), "{text}");
    }
}
