//! A lean load generator: requests built before the timed run and sent as they are, each
//! client one HTTP/1.1 keep-alive connection of hyper's own (no pool, no URL parsing, no
//! redirect or header logic per request), as `wrk` sends pre-built requests.
//!
//! It shares the machine's two cores with the server under test and its database, so every
//! microsecond it spends per request is taken from them. reqwest, which the set-up uses, spent
//! half as much again per status read (`compare` prints the client's CPU per request;
//! measured in crates/bench/README.md, "The load generator").

use crate::{closed_loop_with, Buyer, Run, CHECKOUT_PATH};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use lms_app::WEBHOOK_PATH;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long one request may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    path: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    /// A request for `path` (with its query, if any) on `server`; `headers` besides `Host`.
    ///
    /// # Errors
    /// When the path or a header is not valid HTTP.
    pub fn new(
        method: Method,
        server: SocketAddr,
        path: &str,
        headers: &[(HeaderName, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Self> {
        let mut map = HeaderMap::with_capacity(headers.len() + 1);
        map.insert(HOST, HeaderValue::from_str(&server.to_string())?);
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .with_context(|| format!("the header {name} is not valid HTTP"))?;
            map.insert(name.clone(), value);
        }
        Ok(Self {
            method,
            path: path
                .parse()
                .with_context(|| format!("{path} is not a request path"))?,
            headers: map,
            body: body.into(),
        })
    }

    /// A webhook delivery: `signed` is the body and its `Stripe-Signature` header
    /// (`Sandbox::signed`).
    ///
    /// # Errors
    /// As [`Prepared::new`].
    pub fn webhook(server: SocketAddr, signed: (Vec<u8>, String)) -> anyhow::Result<Self> {
        let (body, signature) = signed;
        Self::new(
            Method::POST,
            server,
            WEBHOOK_PATH,
            &[
                (CONTENT_TYPE, "application/json; charset=utf-8"),
                (HeaderName::from_static("stripe-signature"), &signature),
            ],
            body,
        )
    }

    /// The buyer's purchase-status read of their course, with their token.
    ///
    /// # Errors
    /// As [`Prepared::new`].
    pub fn status_read(server: SocketAddr, buyer: &Buyer) -> anyhow::Result<Self> {
        Self::new(
            Method::GET,
            server,
            &buyer.status_path(),
            &[(AUTHORIZATION, &format!("Bearer {}", buyer.token))],
            Bytes::new(),
        )
    }

    /// The buyer's checkout of their course, with their token.
    ///
    /// # Errors
    /// As [`Prepared::new`].
    pub fn checkout(server: SocketAddr, buyer: &Buyer) -> anyhow::Result<Self> {
        let body = serde_json::json!({ "courseId": buyer.course_id }).to_string();
        Self::new(
            Method::POST,
            server,
            CHECKOUT_PATH,
            &[
                (CONTENT_TYPE, "application/json"),
                (AUTHORIZATION, &format!("Bearer {}", buyer.token)),
            ],
            body,
        )
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Sends each of `requests` once to `server`, from `concurrency` connections opened before the
/// clock starts, each sending its next request as soon as its previous one is answered in
/// full. Latency is from just before sending to the end of the body; a request answered with
/// another status than `expected`, or not within 30 s, counts as an error (with the start of
/// its body).
///
/// # Errors
/// When a connection cannot be opened or a task panics.
pub async fn closed_loop(
    server: SocketAddr,
    requests: Vec<Prepared>,
    concurrency: usize,
    expected: StatusCode,
) -> anyhow::Result<Run> {
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        connections.push(connect(server).await?);
    }
    let count = requests.len();
    let requests = Arc::new(requests);
    closed_loop_with(connections, count, move |mut connection, i| {
        let request = requests[i].request();
        async move {
            let outcome = tokio::time::timeout(TIMEOUT, send(&mut connection, request, expected))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())));
            (connection, outcome)
        }
    })
    .await
}

async fn connect(server: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("starting HTTP/1.1 with {server}"))?;
    // Drives the connection until its sender is dropped at the end of the run.
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(
    connection: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    expected: StatusCode,
) -> Result<(), String> {
    connection.ready().await.map_err(|err| err.to_string())?;
    let response = connection
        .send_request(request)
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| format!("{status}, body: {err}"))?
        .to_bytes();
    expected_answer(status, expected, &body)
}

/// `Ok` when `status` is the one `expected`, else the status with the start of the body.
fn expected_answer(status: StatusCode, expected: StatusCode, body: &[u8]) -> Result<(), String> {
    if status == expected {
        Ok(())
    } else {
        Err(format!(
            "{status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ))
    }
}
