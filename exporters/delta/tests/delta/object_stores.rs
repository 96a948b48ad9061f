//! Object stores against real servers the test starts on 127.0.0.1: S3 through moto's S3 server, Azure Blob
//! Storage through Azurite. Both are installed by `tests/servers/install.sh` into `<workspace>/.test-tools`;
//! when they are missing the tests fail and say to run it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::data::{all_metric_types, genai_traces, mixed_logs};
use crate::exactly_once::three_concurrent_writers;
use crate::harness::{Running, assert_delivered, check_tables, workspace};

/// Azurite's well-known development account.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn tool(relative: &str) -> PathBuf {
    let path = workspace().join(".test-tools").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run exporters/delta/tests/servers/install.sh first",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A server process, killed when the test ends.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(mut command: Command, port: u16) -> Server {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 request; returns the status code.
fn http(port: u16, method: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn s3_options(port: u16) -> Value {
    json!({
        "AWS_ENDPOINT_URL": format!("http://127.0.0.1:{port}"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    })
}

fn start_s3(bucket: &str) -> Server {
    let port = free_port();
    let mut command = Command::new(tool("moto/bin/moto_server"));
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let server = Server::start(command, port);
    let status = http(port, "PUT", &format!("/{bucket}"));
    assert_eq!(status, 200, "creating bucket {bucket}");
    server
}

fn azure_options(port: u16) -> Value {
    json!({
        "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
        "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY,
        "AZURE_STORAGE_ENDPOINT": format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        "AZURE_ALLOW_HTTP": "true",
    })
}

fn start_azurite(data: &Path, container: &str) -> Server {
    let port = free_port();
    let mut command = Command::new(tool("node_modules/.bin/azurite-blob"));
    command.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--location",
        data.to_str().expect("utf-8"),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
    ]);
    let server = Server::start(command, port);
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};\
         BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    );
    let created = Command::new(tool("moto/bin/python"))
        .args([
            "-c",
            "import sys; from azure.storage.blob import BlobServiceClient; \
             BlobServiceClient.from_connection_string(sys.argv[1]).create_container(sys.argv[2])",
            &connection,
            container,
        ])
        .output()
        .expect("run python");
    assert!(
        created.status.success(),
        "creating container {container}: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    server
}

/// `--storage-option K=V` arguments for check_tables.py.
fn option_args(options: &Value) -> Vec<String> {
    options
        .as_object()
        .expect("object")
        .iter()
        .flat_map(|(k, v)| {
            [
                "--storage-option".to_owned(),
                format!("{k}={}", v.as_str().unwrap_or_default()),
            ]
        })
        .collect()
}

async fn all_signals_and_three_writers(location: &str, options: Value, scratch: &Path) {
    let exporter = Running::start(
        "delta",
        json!({"location": location, "max_latency": "100ms", "storage_options": options}),
    );
    assert_delivered(exporter.send(genai_traces(10_000, 10, 3)).await).await;
    assert_delivered(exporter.send(mixed_logs(0, 16)).await).await;
    assert_delivered(exporter.send(all_metric_types(2)).await).await;
    exporter.stop().await.expect("clean stop");

    // Three more writers append to the same spans table at once: 240 more spans.
    three_concurrent_writers(location, options.clone()).await;

    let expect = scratch.join("expect.json");
    std::fs::write(&expect, br#"{"unique": ["spans"]}"#).expect("write");
    let mut args: Vec<String> = [
        "--expect-spans",
        "280",
        "--expect-logs",
        "16",
        "--expect-metrics",
        "10",
        "--quiet",
        "--expect-json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(expect.to_str().expect("utf-8").to_owned());
    args.extend(option_args(&options));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_tables(Path::new(location), &args);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_through_moto_with_concurrent_writers() {
    let server = start_s3("lake");
    let scratch = tempfile::tempdir().expect("tempdir");
    all_signals_and_three_writers("s3://lake/otel", s3_options(server.port), scratch.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_through_azurite_with_concurrent_writers() {
    let data = tempfile::tempdir().expect("tempdir");
    let server = start_azurite(data.path(), "lake");
    all_signals_and_three_writers("az://lake/otel", azure_options(server.port), data.path()).await;
}
