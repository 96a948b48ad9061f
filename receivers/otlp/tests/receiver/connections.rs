//! Connection limits and timeouts, on real sockets: a client that trickles its headers is cut off after
//! `read_header_timeout`, an idle keep-alive connection is closed (HTTP `idle_timeout`, gRPC
//! `max_connection_idle`), a gRPC call cannot hold its connection past `max_connection_age` + grace,
//! connections past `max_connections` wait (they are not reset) until one ends while
//! the connections already open are served, and a body that trickles in is answered 408 after `read_timeout`
//! and cannot hold shutdown longer than that.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlake_core::test_util::sample_traces;
use prost::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// An HTTP-only receiver with `http` merged into its `protocols.http` section.
fn http_config(http: Value) -> Value {
    let mut section = json!({"endpoint": "127.0.0.1:0"});
    if let (Some(base), Value::Object(extra)) = (section.as_object_mut(), http) {
        base.extend(extra);
    }
    json!({"protocols": {"http": section}})
}

fn otlp_body() -> Vec<u8> {
    sample_traces(1, 2).encode_to_vec()
}

/// The head of an OTLP/HTTP protobuf POST of `length` bytes (keep-alive: HTTP/1.1's default).
fn post_head(length: usize, extra: &str) -> String {
    format!(
        "POST /v1/traces HTTP/1.1\r\nHost: otlake\r\nContent-Type: application/x-protobuf\r\nContent-Length: {length}\r\n{extra}\r\n"
    )
}

/// Reads one response (head and `Content-Length` body); `None` if the connection ended first.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while raw.len() < head_end + length {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    Some((status, raw[head_end..head_end + length].to_vec()))
}

/// Sends one OTLP request on an open connection and reads its answer.
async fn exchange(stream: &mut TcpStream) -> Option<u16> {
    let body = otlp_body();
    stream
        .write_all(post_head(body.len(), "").as_bytes())
        .await
        .ok()?;
    stream.write_all(&body).await.ok()?;
    bounded("an answer", read_response(stream))
        .await
        .map(|(status, _)| status)
}

/// Waits until the server has closed `stream` (end of stream or reset), bounded.
async fn closed_by_server(stream: &mut (impl AsyncRead + Unpin)) {
    let mut buf = [0u8; 1024];
    bounded("the server to close the connection", async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_client_that_sends_its_headers_byte_by_byte_is_cut_off_after_read_header_timeout() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(http_config(json!({"read_header_timeout": "1s"})), outputs).await;
    let addr = receiver.http_addr();

    let slow = TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = slow.into_split();
    let trickle = tokio::spawn(async move {
        let _ = writer
            .write_all(b"POST /v1/traces HTTP/1.1\r\nHost: otlake\r\nX-Slow: ")
            .await;
        // One byte every 100 ms, for longer than any bound here: only the server can end this.
        loop {
            if writer.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // A real client is served meanwhile.
    let reply = post_protobuf(addr, "/v1/traces", otlp_body()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

    closed_by_server(&mut reader).await;
    trickle.abort();
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 1, "the slow request never reached a pipeline");
}

#[tokio::test]
async fn an_idle_keep_alive_http_connection_is_closed_after_idle_timeout() {
    let (outputs, seen) = delivering_pipelines();
    // No header timeout, so only the idle timeout can close the connection.
    let config = http_config(json!({"read_header_timeout": "0s", "idle_timeout": "500ms"}));
    let receiver = start(config, outputs).await;
    let mut stream = TcpStream::connect(receiver.http_addr())
        .await
        .expect("connect");
    assert_eq!(exchange(&mut stream).await, Some(200));
    closed_by_server(&mut stream).await;
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 1);
}

/// One unary gRPC export on an HTTP/2 connection of our own.
async fn grpc_export(
    sender: &mut hyper::client::conn::http2::SendRequest<TestBody>,
) -> Option<i32> {
    let message = sample_traces(1, 1).encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("http://otlake{TRACE_EXPORT}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(full(Bytes::from(frame)))
        .expect("request");
    let response = bounded("gRPC export", sender.send_request(request))
        .await
        .ok()?;
    let collected = bounded(
        "gRPC answer",
        http_body_util::BodyExt::collect(response.into_body()),
    )
    .await
    .ok()?;
    collected
        .trailers()?
        .get("grpc-status")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[tokio::test]
async fn an_idle_grpc_connection_is_closed_after_max_connection_idle() {
    let (outputs, seen) = delivering_pipelines();
    let config = json!({"protocols": {"grpc": {
        "endpoint": "127.0.0.1:0",
        "keepalive": {"server_parameters": {"max_connection_idle": "500ms"}}
    }}});
    let receiver = start(config, outputs).await;
    let tcp = TcpStream::connect(receiver.grpc_addr())
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    assert_eq!(grpc_export(&mut sender).await, Some(0), "OK");
    // The server's GOAWAY ends the connection; the client sees it end.
    let _ = bounded("the server to close the idle connection", connection).await;
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn a_grpc_call_cannot_hold_its_connection_past_max_connection_age_and_grace() {
    // The verdict never comes: only the age limit and its grace can end the connection.
    let (outputs, mut rx) = held_pipeline(otlake_core::Signal::Traces, 1);
    let config = json!({"protocols": {"grpc": {
        "endpoint": "127.0.0.1:0",
        "keepalive": {"server_parameters": {
            "max_connection_age": "300ms", "max_connection_age_grace": "300ms"
        }}
    }}});
    let receiver = start(config, outputs).await;
    let tcp = TcpStream::connect(receiver.grpc_addr())
        .await
        .expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("HTTP/2 handshake");
    let connection = tokio::spawn(connection);
    let call = tokio::spawn(async move { grpc_export(&mut sender).await });
    let held = bounded("the call's batch", rx.recv()).await.expect("batch");
    let _ = bounded("the server to drop the old connection", connection).await;
    assert_eq!(
        bounded("the call", call).await.expect("task"),
        None,
        "the call ended with its connection"
    );
    held.acks.resolve(otlake_core::Outcome::Delivered);
    receiver.stop().await.expect("clean stop");
}

#[tokio::test]
async fn connections_past_max_connections_wait_until_one_ends_while_open_ones_are_served() {
    let (outputs, seen) = delivering_pipelines();
    let config = http_config(json!({
        "max_connections": 2, "idle_timeout": "0s", "read_header_timeout": "0s"
    }));
    let receiver = start(config, outputs).await;
    let addr = receiver.http_addr();

    let mut first = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(exchange(&mut first).await, Some(200));
    let mut second = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(exchange(&mut second).await, Some(200));

    // The third connection is not refused (the kernel completes it) but not served while two are open.
    let mut third = TcpStream::connect(addr)
        .await
        .expect("connect waits, not reset");
    let body = otlp_body();
    third
        .write_all(post_head(body.len(), "").as_bytes())
        .await
        .expect("write");
    third.write_all(&body).await.expect("write");
    let waiting = tokio::spawn(async move {
        let answer = read_response(&mut third).await;
        (third, answer)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a third connection was served past the cap"
    );

    // The open connections keep being served.
    assert_eq!(exchange(&mut first).await, Some(200));
    assert!(
        !waiting.is_finished(),
        "a third connection was served past the cap"
    );

    // One ends: the waiting one is accepted and answered.
    drop(second);
    let (_third, answer) = bounded("the waiting connection's answer", waiting)
        .await
        .expect("task");
    assert_eq!(answer.map(|(status, _)| status), Some(200));
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 4);
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_after_read_timeout_and_does_not_hold_shutdown() {
    let (outputs, seen) = delivering_pipelines();
    let receiver = start(http_config(json!({"read_timeout": "1s"})), outputs).await;
    let addr: SocketAddr = receiver.http_addr();

    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(post_head(1000, "Expect: 100-continue\r\n").as_bytes())
        .await
        .expect("write");
    // hyper says `100 Continue` once the handler starts reading the body: from here on the request is ours.
    let mut continued = [0u8; 25];
    bounded("100 Continue", slow.read_exact(&mut continued))
        .await
        .expect("read");
    assert!(continued.starts_with(b"HTTP/1.1 100"), "{continued:?}");
    slow.write_all(&[0x0a; 10]).await.expect("write");

    // Shutdown while the body is still missing 990 bytes: `stop` is bounded, so a held shutdown fails here.
    receiver.shutdown.cancel();
    let (status, body) = bounded("the slow client's answer", read_response(&mut slow))
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(status, 408);
    assert!(
        String::from_utf8_lossy(&body).contains("read_timeout"),
        "{body:?}"
    );
    receiver.stop().await.expect("clean stop");
    assert_eq!(seen.count(), 0);
}
