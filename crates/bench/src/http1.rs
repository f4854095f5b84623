//! A lean load generator, as `wrk` is: each request serialised once before the timed run and
//! written as those bytes, each client one HTTP/1.1 keep-alive connection whose answers it
//! parses in place with `httparse` (status, `Content-Length`, the body's end): no request or
//! header map built per request, no connection task and channel between the client and its
//! socket.
//!
//! It shares the machine's two cores with the server under test and its database, so every
//! microsecond it spends per request is taken from them. reqwest, which the set-up uses, spent
//! half as much again per status read as hyper's own connections, and those more than this
//! (`compare` prints the client's CPU per request; measured in crates/bench/README.md, "The load
//! generator").

use crate::{closed_loop_with, Buyer, Run, CHECKOUT_PATH};
use anyhow::Context;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, StatusCode, Uri};
use lms_app::WEBHOOK_PATH;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one request may take before it counts as failed.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One request, ready to send: its bytes on the wire.
#[derive(Debug, Clone)]
pub struct Prepared {
    wire: Bytes,
}

impl Prepared {
    /// A request for `path` (with its query, if any) on `server`; `headers` besides `Host` and
    /// `Content-Length`, which every request carries.
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
        // Checked as hyper checked them: a request the server would refuse is refused here.
        path.parse::<Uri>()
            .with_context(|| format!("{path} is not a request path"))?;
        let body = body.into();
        let mut wire = format!("{method} {path} HTTP/1.1\r\nhost: {server}\r\n");
        for (name, value) in headers {
            HeaderValue::from_str(value)
                .with_context(|| format!("the header {name} is not valid HTTP"))?;
            write!(wire, "{name}: {value}\r\n")?;
        }
        write!(wire, "content-length: {}\r\n\r\n", body.len())?;
        let mut wire = wire.into_bytes();
        wire.extend_from_slice(&body);
        Ok(Self { wire: wire.into() })
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
        connections.push(Connection::open(server).await?);
    }
    let count = requests.len();
    let requests = Arc::new(requests);
    closed_loop_with(connections, count, move |mut connection, i| {
        let request = requests[i].wire.clone();
        async move {
            let outcome = tokio::time::timeout(TIMEOUT, connection.send(&request, expected))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())));
            (connection, outcome)
        }
    })
    .await
}

/// The answers' head may name this many headers at most (the app's name about ten).
const MAX_HEADERS: usize = 32;

/// One keep-alive connection and what was read from it past the last answer.
struct Connection {
    stream: TcpStream,
    read: Vec<u8>,
    /// Set while an exchange is under way: an exchange abandoned half-way (a timeout drops it,
    /// an error ends it) leaves the stream out of step, so every later one fails with this.
    broken: Option<&'static str>,
}

/// What an answer's head says.
struct Head {
    length: usize,
    status: StatusCode,
    body_length: usize,
}

impl Connection {
    async fn open(server: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(server)
            .await
            .with_context(|| format!("connecting to {server}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            read: Vec::with_capacity(4096),
            broken: None,
        })
    }

    /// Writes `request`, reads its answer whole, and checks its status.
    async fn send(&mut self, request: &[u8], expected: StatusCode) -> Result<(), String> {
        if let Some(why) = self.broken {
            return Err(format!("the connection is unusable: {why}"));
        }
        self.broken = Some("an earlier request was abandoned half-way");
        self.stream
            .write_all(request)
            .await
            .map_err(|err| format!("writing the request: {err}"))?;
        let head = loop {
            if let Some(head) = parse_head(&self.read)? {
                break head;
            }
            self.fill().await?;
        };
        let end = head.length + head.body_length;
        while self.read.len() < end {
            self.fill().await?;
        }
        let outcome = expected_answer(head.status, expected, &self.read[head.length..end]);
        self.read.drain(..end);
        self.broken = None;
        outcome
    }

    /// Reads what the server sent next.
    async fn fill(&mut self) -> Result<(), String> {
        match self.stream.read_buf(&mut self.read).await {
            Ok(0) => Err("the server closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(err) => Err(format!("reading the answer: {err}")),
        }
    }
}

/// The head at the start of `read`, once it is all there (`None` until then).
fn parse_head(read: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(read) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(err) => return Err(format!("not an HTTP answer: {err}")),
    };
    let status = response
        .code
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or("an answer without a valid status")?;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
    };
    if header("transfer-encoding").is_some() {
        return Err(format!(
            "{status} sent with Transfer-Encoding: only Content-Length bodies are read"
        ));
    }
    let body_length = match header("content-length") {
        Some(value) => std::str::from_utf8(value)
            .ok()
            .and_then(|value| value.trim().parse().ok())
            .ok_or(format!("{status} with an unreadable Content-Length"))?,
        // Answers that never have a body (no request asks for a `100 Continue`).
        None if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED => 0,
        None => return Err(format!("{status} without a Content-Length")),
    };
    Ok(Some(Head {
        length,
        status,
        body_length,
    }))
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
