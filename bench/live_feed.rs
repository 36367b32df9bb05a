//! Benchmark of the live feed: N WebSocket subscribers on loopback following
//! `executionEvents`, executions started through the runtime API one at a time, and for each
//! event the time from just before its request was sent to its arrival at every subscriber
//! (an upper bound of commit-to-delivery), plus the server's memory per idle subscription.
//!
//! ```text
//! cargo build --release --bin runflow --example live_feed
//! target/release/examples/live_feed --subscribers 20000 --per-connection 2
//! target/release/examples/live_feed --subscribers 50000 --per-connection 2 --replicas 2 \
//!     --postgres postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Options: `--subscribers N` (subscriptions in all), `--per-connection S` (subscriptions per
//! WebSocket; this machine allows 20,000 open files per process, so 20,000 subscribers on one
//! instance take at least two per connection), `--events E` (default 20), `--interval-ms I`
//! (between events, default 500), `--replicas R` (servers on one PostgreSQL database;
//! subscribers are split evenly, events are sent to the first), `--postgres URL` (a scratch
//! database is created and dropped; default: embedded SQLite), `--same-query false` (every
//! connection subscribes with its own document, so nothing is shared: the cost without
//! multiplexing), `--binary PATH` (another build of the server, for an A/B run).
//!
//! The subscribers run in child processes of this binary (`live_feed client ...`, at most
//! 15,000 connections each) so each stays under the open-file limit; they share the
//! machine's cores with the server, so the latency includes the clients' own reading. Every
//! connection goes to 127.0.0.1; the command starts and stops its own servers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const CONNECTIONS_PER_CLIENT: usize = 15_000;
const JWT_SECRET: &str = "bench-secret-bench-secret-bench-secret-0123";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        return client(&Options::parse(&args[1..]));
    }
    orchestrate(&Options::parse(&args))
}

struct Options(HashMap<String, String>);

impl Options {
    fn parse(args: &[String]) -> Options {
        let mut map = HashMap::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                map.insert(name.to_string(), iter.next().cloned().unwrap_or_default());
            }
        }
        Options(map)
    }

    fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.0.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) a process has used, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let (user, system) = cpu_split_ms(pid);
    user + system
}

/// User and system CPU time a process has used, in milliseconds.
fn cpu_split_ms(pid: u32) -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return (0.0, 0.0);
    };
    // Fields after the command name (which may hold spaces) start at its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 1/100 s on Linux.
    (ticks(11) * 10.0, ticks(12) * 10.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

fn orchestrate(options: &Options) -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = options
        .text("binary")
        .map_or_else(|| root.join("target/release/runflow"), std::path::PathBuf::from);
    anyhow::ensure!(
        binary.exists(),
        "build the server first: cargo build --release --bin runflow"
    );
    let subscribers: usize = options.get("subscribers", 1000);
    let per_connection: usize = options.get("per-connection", 1).max(1);
    let events: usize = options.get("events", 20);
    let interval = Duration::from_millis(options.get("interval-ms", 500));
    let replicas: usize = options.get("replicas", 1).max(1);
    let same_query: bool = options.get("same-query", true);
    let postgres = options.text("postgres").map(str::to_string);
    anyhow::ensure!(
        replicas == 1 || postgres.is_some(),
        "replicas share a PostgreSQL database: pass --postgres"
    );
    let connections = subscribers.div_ceil(per_connection);

    let data_dir = tempfile::tempdir()?;
    let database = postgres.as_ref().map(|url| {
        let name = format!("rf_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let _ = Command::new("psql")
            .args([url.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
            .status();
        (url.clone(), name)
    });
    let env = |port: u16| -> Vec<(String, String)> {
        let mut env = vec![
            ("RUNFLOW_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("RUNFLOW_DATA_DIR".into(), data_dir.path().display().to_string()),
            ("RUNFLOW_JWT_SECRET".into(), JWT_SECRET.into()),
            (
                "RUNFLOW_WS_MAX_SUBSCRIPTIONS".into(),
                per_connection.max(10).to_string(),
            ),
            ("RUNFLOW_WS_MAX_CONNECTIONS_PER_TENANT".into(), "1000000".into()),
            ("RUNFLOW_RATE_LIMIT_WS_CONNECTS".into(), "off".into()),
            ("RUNFLOW_RATE_LIMIT_GRAPHQL".into(), "off".into()),
            ("RUNFLOW_RATE_LIMIT_RUNTIME".into(), "off".into()),
            ("RUNFLOW_WORKERS".into(), "0".into()),
            ("RUST_LOG".into(), "warn".into()),
        ];
        if let Some((url, name)) = &database {
            let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
            env.push(("RUNFLOW_DATABASE_URL".into(), format!("{base}/{name}")));
        }
        env
    };
    let mut servers = Vec::new();
    for _ in 0..replicas {
        let port = free_port()?;
        let child = Command::new(&binary)
            .envs(env(port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        servers.push(Server { child, port });
        wait_ready(port)?;
    }
    let token = |role: &str, extra: &[&str]| -> anyhow::Result<String> {
        let output = Command::new(&binary)
            .envs(env(servers[0].port))
            .args(["token", "--tenant", "bench", "--ttl", "2h", "--role", role])
            .args(extra)
            .output()?;
        anyhow::ensure!(output.status.success(), "runflow token failed");
        Ok(String::from_utf8(output.stdout)?.trim().to_string())
    };
    let developer = token("developer", &[])?;
    let viewer = token("viewer", &[])?;
    let runtime_token = token("runtime", &["--environment", "staging"])?;

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", servers[0].port);
    runtime.block_on(async {
        let body = serde_json::json!({
            "query": "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { number } } }",
            "variables": { "input": { "slug": "bot", "files": [{ "path": "runflow.toml", "content": "name = \"bot\"\nentrypoint = [\"python3\", \"main.py\"]\n" }] } },
        });
        let response: serde_json::Value =
            http.post(format!("{base}/graphql")).bearer_auth(&developer).json(&body).send().await?.json().await?;
        anyhow::ensure!(response.get("errors").is_none(), "deploy failed: {response}");
        Ok(())
    })?;

    let rss_before: Vec<u64> = servers.iter().map(|s| rss_kib(s.child.id())).collect();
    // Subscribers: child processes of at most CONNECTIONS_PER_CLIENT connections each, spread
    // over the replicas.
    let processes = connections.div_ceil(CONNECTIONS_PER_CLIENT).max(replicas);
    let me = std::env::current_exe()?;
    let mut clients = Vec::new();
    let mut offset = 0;
    for i in 0..processes {
        let share = connections / processes + usize::from(i < connections % processes);
        let server = &servers[i % replicas];
        let child = Command::new(&me)
            .args([
                "client",
                "--port",
                &server.port.to_string(),
                "--token",
                &viewer,
                "--connections",
                &share.to_string(),
                "--per-connection",
                &per_connection.to_string(),
                "--offset",
                &offset.to_string(),
                "--same-query",
                &same_query.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        offset += share;
        clients.push(child);
    }
    let mut readers = Vec::new();
    for client in &mut clients {
        let stdout = client
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("a client without stdout"))?;
        readers.push(BufReader::new(stdout));
    }
    for reader in &mut readers {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        anyhow::ensure!(line.starts_with("ready"), "a client failed: {line}");
    }
    std::thread::sleep(Duration::from_secs(3));
    let rss_idle: Vec<u64> = servers.iter().map(|s| rss_kib(s.child.id())).collect();

    // Events, one at a time.
    let server_cpu_before: f64 = servers.iter().map(|s| cpu_ms(s.child.id())).sum();
    let server_system_before: f64 = servers.iter().map(|s| cpu_split_ms(s.child.id()).1).sum();
    let client_cpu_before: f64 = clients.iter().map(|c| cpu_ms(c.id())).sum();
    let mut sent: HashMap<String, u64> = HashMap::new();
    runtime.block_on(async {
        for i in 0..events {
            let at = now_ns();
            let started: serde_json::Value = http
                .post(format!("{base}/v1/runtime/executions"))
                .bearer_auth(&runtime_token)
                .json(&serde_json::json!({ "agent": "bot", "input": { "i": i } }))
                .send()
                .await?
                .json()
                .await?;
            let id = started["id"].as_str().unwrap_or_default();
            sent.insert(base64_url(&format!("Execution:STAGING:{id}")), at);
            tokio::time::sleep(interval).await;
        }
        anyhow::Ok(())
    })?;
    std::thread::sleep(Duration::from_secs(3));
    let server_cpu = servers.iter().map(|s| cpu_ms(s.child.id())).sum::<f64>() - server_cpu_before;
    let server_system = servers.iter().map(|s| cpu_split_ms(s.child.id()).1).sum::<f64>() - server_system_before;
    let client_cpu = clients.iter().map(|c| cpu_ms(c.id())).sum::<f64>() - client_cpu_before;

    // Collect arrivals.
    let mut latencies = Vec::new();
    for (mut client, reader) in clients.into_iter().zip(readers) {
        drop(client.stdin.take());
        for line in reader.lines() {
            let line = line?;
            let mut parts = line.split_whitespace();
            let Some(id) = parts.next() else { continue };
            let Some(at) = sent.get(id) else { continue };
            latencies.extend(
                parts
                    .filter_map(|t| t.parse::<u64>().ok())
                    .map(|t| (t.saturating_sub(*at)) as f64 / 1e6),
            );
        }
        let _ = client.wait();
    }
    latencies.sort_by(f64::total_cmp);
    let expected = events * subscribers;
    let idle_kib: u64 = rss_idle
        .iter()
        .zip(&rss_before)
        .map(|(idle, before)| idle.saturating_sub(*before))
        .sum();
    let summary = serde_json::json!({
        "backend": if postgres.is_some() { "postgres" } else { "sqlite" },
        "replicas": replicas,
        "subscribers": subscribers,
        "connections": connections,
        "perConnection": per_connection,
        "sameQuery": same_query,
        "events": events,
        "delivered": latencies.len(),
        "expected": expected,
        "latencyMs": {
            "p50": round1(percentile(&latencies, 50.0)),
            "p99": round1(percentile(&latencies, 99.0)),
            "max": round1(latencies.last().copied().unwrap_or(f64::NAN)),
        },
        "serverRssKiB": { "before": rss_before, "withIdleSubscribers": rss_idle },
        "kibPerIdleSubscription": round1(idle_kib as f64 / subscribers as f64),
        "kibPerIdleConnection": round1(idle_kib as f64 / connections as f64),
        // CPU per event while the events were sent and delivered (the idle time between
        // events included: keep-alive pings, the feed's polls).
        "cpuMsPerEvent": {
            "servers": round1(server_cpu / events as f64),
            "serversInKernel": round1(server_system / events as f64),
            "clients": round1(client_cpu / events as f64),
        },
    });
    println!("{summary}");
    drop(servers);
    if let Some((url, name)) = &database {
        let _ = Command::new("psql")
            .args([url.as_str(), "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")])
            .status();
    }
    anyhow::ensure!(
        latencies.len() == expected,
        "{} of {expected} deliveries arrived",
        latencies.len()
    );
    Ok(())
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn wait_ready(port: u16) -> anyhow::Result<()> {
    for _ in 0..400 {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
            let mut response = String::new();
            let _ = std::io::Read::read_to_string(&mut stream, &mut response);
            if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("runflow on port {port} did not start")
}

/// A subscriber process: `connections` WebSockets with `per-connection` subscriptions each.
/// Prints `ready` when every subscription is sent; on end of stdin prints one line per
/// execution id: the id, then the arrival time (unix ns) of each STARTED event for it.
fn client(options: &Options) -> anyhow::Result<()> {
    let port: u16 = options.get("port", 0);
    let token = options.text("token").unwrap_or_default().to_string();
    let connections: usize = options.get("connections", 1);
    let per_connection: usize = options.get("per-connection", 1);
    let offset: usize = options.get("offset", 0);
    let same_query: bool = options.get("same-query", true);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let ready = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let (stop_sender, stop) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let opened = Arc::new(tokio::sync::Semaphore::new(200));
        for n in 0..connections {
            let token = token.clone();
            let ready = ready.clone();
            let failed = failed.clone();
            let mut stop = stop.clone();
            let opened = opened.clone();
            tasks.spawn(async move {
                let mut arrivals: Vec<(String, u64)> = Vec::new();
                let permit = opened.acquire_owned().await;
                let connected = subscribe(port, &token, per_connection, offset + n, same_query).await;
                drop(permit);
                let Ok(mut socket) = connected else {
                    failed.fetch_add(1, Ordering::SeqCst);
                    ready.fetch_add(1, Ordering::SeqCst);
                    return arrivals;
                };
                ready.fetch_add(1, Ordering::SeqCst);
                loop {
                    tokio::select! {
                        message = socket.next() => match message {
                            Some(Ok(Message::Text(text))) => {
                                let at = now_ns();
                                if let Some(id) = started_execution(text.as_str()) {
                                    arrivals.push((id.to_string(), at));
                                } else if text.as_str().contains(r#""type":"ping""#) {
                                    let _ = socket.send(Message::text(r#"{"type":"pong"}"#)).await;
                                }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                        _ = stop.changed() => break,
                    }
                }
                arrivals
            });
        }
        while ready.load(Ordering::SeqCst) < connections {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let failures = failed.load(Ordering::SeqCst);
        if failures > 0 {
            println!("failed: {failures} connections could not subscribe");
            std::process::exit(1);
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        // Until the orchestrator closes stdin.
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await?;
        let _ = stop_sender.send(true);
        let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
        while let Some(result) = tasks.join_next().await {
            for (id, at) in result? {
                by_id.entry(id).or_default().push(at);
            }
        }
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        for (id, times) in by_id {
            write!(out, "{id}")?;
            for t in times {
                write!(out, " {t}")?;
            }
            writeln!(out)?;
        }
        out.flush()?;
        anyhow::Ok(())
    })
}

type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn subscribe(port: u16, token: &str, subscriptions: usize, n: usize, same_query: bool) -> anyhow::Result<Socket> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut request = format!("ws://127.0.0.1:{port}/graphql/ws").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    let init =
        serde_json::json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket.send(Message::text(init.to_string())).await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.as_str().contains("connection_ack") => break,
            Some(Ok(_)) => {}
            _ => anyhow::bail!("no connection_ack"),
        }
    }
    for s in 0..subscriptions {
        // With `same_query` every subscriber sends the same operation (a dashboard's); without
        // it, a comment makes each document distinct, so none share an execution.
        let distinct = if same_query {
            String::new()
        } else {
            format!("# subscriber {n}-{s}\n")
        };
        let query =
            format!("{distinct}subscription {{ executionEvents(environment: STAGING) {{ kind execution {{ id }} }} }}");
        let subscribe =
            serde_json::json!({ "type": "subscribe", "id": (s + 1).to_string(), "payload": { "query": query } });
        socket.send(Message::text(subscribe.to_string())).await?;
    }
    Ok(socket)
}

/// The execution id of a STARTED execution event, read without parsing the whole message.
fn started_execution(text: &str) -> Option<&str> {
    if !text.contains(r#""kind":"STARTED""#) {
        return None;
    }
    let start = text.find(r#""execution":{"id":""#)? + r#""execution":{"id":""#.len();
    let end = text[start..].find('"')? + start;
    Some(&text[start..end])
}
