//! The benches' load generator (`lms_bench::http1`) against a small server in this process:
//! every prepared request arrives once, whole (method, path, `Host`, headers, body), over
//! the number of connections asked for; the webhook, status-read and checkout requests carry
//! the app's paths and their credentials; an unexpected status is an error that quotes the
//! answer.

#![expect(clippy::expect_used, reason = "a failing expect is a failing test")]

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hyper::header::{HeaderName, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use lms_app::WEBHOOK_PATH;
use lms_bench::http1::{closed_loop, Prepared};
use lms_bench::{Buyer, CHECKOUT_PATH};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the server saw: one line per request, and the connections' peer addresses.
#[derive(Default)]
struct Seen {
    requests: Vec<String>,
    connections: BTreeSet<SocketAddr>,
}

async fn record(
    request: HttpRequest,
    body: web::Bytes,
    seen: web::Data<Mutex<Seen>>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let line = format!(
        "{} {} host={} type={} signature={} auth={} body={}",
        request.method(),
        request.uri(),
        header("host"),
        header("content-type"),
        header("stripe-signature"),
        header("authorization"),
        String::from_utf8_lossy(&body),
    );
    let mut seen = seen.lock().expect("the lock");
    seen.requests.push(line);
    if let Some(peer) = request.peer_addr() {
        seen.connections.insert(peer);
    }
    if request.path() == "/teapot" {
        HttpResponse::build(actix_web::http::StatusCode::IM_A_TEAPOT).body("short and stout")
    } else {
        HttpResponse::Ok().body("ok")
    }
}

/// Serves [`record`] on a free loopback port.
fn serve() -> (SocketAddr, Arc<Mutex<Seen>>, actix_web::dev::ServerHandle) {
    let seen = web::Data::new(Mutex::new(Seen::default()));
    let shared = seen.clone().into_inner();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(seen.clone())
            .default_service(web::to(record))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("a free port");
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (address, shared, handle)
}

#[actix_web::test]
async fn every_prepared_request_arrives_once_and_whole() {
    let (server, seen, handle) = serve();
    let requests: Vec<Prepared> = (0..40)
        .map(|i| {
            Prepared::new(
                Method::POST,
                server,
                &format!("/hooks/{i}?n={i}"),
                &[
                    (CONTENT_TYPE, "application/json"),
                    (
                        HeaderName::from_static("stripe-signature"),
                        &format!("t={i}"),
                    ),
                ],
                format!("{{\"n\":{i}}}"),
            )
            .expect("a valid request")
        })
        .collect();
    let run = closed_loop(server, requests, 4, StatusCode::OK)
        .await
        .expect("the run");
    handle.stop(true).await;

    assert_eq!((run.requests, run.errors), (40, 0), "{:?}", run.first_error);
    assert_eq!(run.latencies.len(), 40);
    let seen = seen.lock().expect("the lock");
    let expected: BTreeSet<String> = (0..40)
        .map(|i| {
            format!(
                "POST /hooks/{i}?n={i} host={server} type=application/json signature=t={i} auth=- body={{\"n\":{i}}}"
            )
        })
        .collect();
    let arrived: BTreeSet<String> = seen.requests.iter().cloned().collect();
    assert_eq!(seen.requests.len(), 40, "each request once");
    assert_eq!(arrived, expected);
    assert_eq!(
        seen.connections.len(),
        4,
        "one keep-alive connection per client"
    );
}

#[actix_web::test]
async fn the_webhook_read_and_checkout_requests_are_the_apps_routes_with_their_credentials() {
    let (server, seen, handle) = serve();
    let buyer = Buyer {
        token: "token-1".to_owned(),
        course_id: "course-1".to_owned(),
    };
    let requests = vec![
        Prepared::webhook(
            server,
            (b"{\"id\":\"evt_1\"}".to_vec(), "t=1,v1=ab".to_owned()),
        )
        .expect("a valid request"),
        Prepared::status_read(server, &buyer).expect("a valid request"),
        Prepared::checkout(server, &buyer).expect("a valid request"),
    ];
    let run = closed_loop(server, requests, 1, StatusCode::OK)
        .await
        .expect("the run");
    handle.stop(true).await;

    assert_eq!(run.errors, 0, "{:?}", run.first_error);
    let seen = seen.lock().expect("the lock");
    assert_eq!(
        seen.requests,
        [
            format!("POST {WEBHOOK_PATH} host={server} type=application/json; charset=utf-8 signature=t=1,v1=ab auth=- body={{\"id\":\"evt_1\"}}"),
            format!("GET /api/v1/payments/courses/course-1/purchase-status host={server} type=- signature=- auth=Bearer token-1 body="),
            format!("POST {CHECKOUT_PATH} host={server} type=application/json signature=- auth=Bearer token-1 body={{\"courseId\":\"course-1\"}}"),
        ]
    );
}

#[actix_web::test]
async fn an_unexpected_status_is_an_error_quoting_the_answer() {
    let (server, _seen, handle) = serve();
    let requests = vec![
        Prepared::new(Method::GET, server, "/fine", &[], "").expect("a valid request"),
        Prepared::new(Method::GET, server, "/teapot", &[], "").expect("a valid request"),
    ];
    let run = closed_loop(server, requests, 1, StatusCode::OK)
        .await
        .expect("the run");
    handle.stop(true).await;

    assert_eq!((run.requests, run.errors), (2, 1));
    assert_eq!(
        run.per_item
            .iter()
            .map(|(_, failed)| *failed)
            .collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(
        run.first_error.as_deref(),
        Some("418 I'm a teapot short and stout")
    );
}

#[test]
fn a_request_that_is_not_http_is_refused_before_the_run() {
    let server: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    let error = Prepared::new(Method::GET, server, "not a path", &[], "")
        .expect_err("a space is not allowed in a path");
    assert!(error.to_string().contains("not a path"), "{error}");
    let error = Prepared::new(
        Method::GET,
        server,
        "/",
        &[(CONTENT_TYPE, "line\nbreak")],
        "",
    )
    .expect_err("a line break is not allowed in a header");
    assert!(error.to_string().contains("content-type"), "{error}");
}

/// A server on a free loopback port that answers every request on a connection with `answer`,
/// written a few bytes at a time, each piece flushed on its own.
async fn piecemeal_server(answer: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut chunk = [0_u8; 1024];
                loop {
                    // The requests carry no body here: the head's end is the request's.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        for piece in answer.chunks(7) {
                            if stream.write_all(piece).await.is_err() {
                                return;
                            }
                            stream.flush().await.ok();
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    address
}

/// `count` times `GET /`, one after the other on one connection.
async fn gets_on_one_connection(server: SocketAddr, count: usize) -> lms_bench::Run {
    let requests = (0..count)
        .map(|_| Prepared::new(Method::GET, server, "/", &[], "").expect("a valid request"))
        .collect();
    closed_loop(server, requests, 1, StatusCode::OK)
        .await
        .expect("the run")
}

#[tokio::test]
async fn an_answer_arriving_in_pieces_is_read_whole_and_the_connection_kept() {
    let server =
        piecemeal_server(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nx-a: b\r\n\r\nhello world")
            .await;
    let run = gets_on_one_connection(server, 3).await;
    assert_eq!((run.requests, run.errors), (3, 0), "{:?}", run.first_error);
}

#[tokio::test]
async fn a_chunked_answer_is_an_error_and_its_connection_is_not_used_again() {
    let server = piecemeal_server(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    let run = gets_on_one_connection(server, 2).await;
    assert_eq!((run.requests, run.errors), (2, 2));
    let first = run.first_error.expect("an error");
    assert!(first.contains("Transfer-Encoding"), "{first}");
}
