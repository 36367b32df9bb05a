// Benchmark of the live feed: N WebSocket subscribers on loopback, executions ingested through
// the runtime API, commit-to-delivery latency, delivery rate, memory per idle subscription,
// and span ingestion rate.
//
// Usage (after `cargo build --release` and `npm ci --prefix tests/ws-client`):
//   node bench/live_feed.mjs [--subscribers 1000] [--executions 100] [--postgres postgres://postgres@127.0.0.1:5432/test]
// Every connection goes to 127.0.0.1; the script starts and stops its own server.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { randomUUID } from "node:crypto";
import WebSocket from "../tests/ws-client/node_modules/ws/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const binary = join(root, "target", "release", "runflow");
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const subscribers = Number(args.subscribers ?? 1000);
const executions = Number(args.executions ?? 100);
const postgres = args.postgres;

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)))];
};
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

let database;
if (postgres) {
  database = "rf_bench_" + randomUUID().replaceAll("-", "").slice(0, 12);
  execFileSync("psql", [postgres, "-qc", `CREATE DATABASE ${database}`]);
}
const port = await freePort();
const env = {
  PATH: process.env.PATH,
  RUNFLOW_LISTEN: `127.0.0.1:${port}`,
  RUNFLOW_DATA_DIR: mkdtempSync(join(tmpdir(), "runflow-bench-")),
  RUNFLOW_JWT_SECRET: "bench-secret-bench-secret-bench-secret-0123",
  RUNFLOW_WS_MAX_SUBSCRIPTIONS: "10",
  RUST_LOG: "warn",
  ...(database ? { RUNFLOW_DATABASE_URL: postgres.replace(/\/[^/]*$/, "/" + database) } : {}),
};
const server = spawn(binary, [], { env, stdio: "ignore" });
const url = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(url + "/readyz")).ok) break;
  } catch {}
  if (i > 200) throw new Error("runflow did not start");
  await sleep(50);
}
const token = (...extra) => execFileSync(binary, ["token", "--tenant", "bench", "--ttl", "2h", ...extra], { env }).toString().trim();
const developer = token("--role", "developer");
const viewer = token("--role", "viewer");
const runtimeToken = token("--role", "runtime", "--environment", "staging");

async function gql(query, variables) {
  const response = await fetch(url + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${developer}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
async function runtime(path, body) {
  const response = await fetch(`${url}/v1/runtime${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${runtimeToken}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

await gql("mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { number } } }", {
  input: { slug: "bot", files: [{ path: "runflow.toml", content: 'name = "bot"\nentrypoint = ["python3", "main.py"]\n' }] },
});

// Ingestion rate: batches of 1,000 spans into one execution.
const spanRun = await runtime("/executions", { agent: "bot", input: {} });
const batches = 20;
let spanStart = performance.now();
for (let b = 0; b < batches; b++) {
  const spans = Array.from({ length: 1000 }, (_, i) => ({
    name: `step-${b}-${i}`, kind: "LLM", startTime: new Date().toISOString(), inputTokens: 100, outputTokens: 20,
    attributes: { model: "bench", i },
  }));
  await runtime(`/executions/${spanRun.id}/spans`, { spans });
}
const spansPerSecond = (batches * 1000) / ((performance.now() - spanStart) / 1000);

// Subscribers.
const rssBefore = rssKiB(server.pid);
const arrivals = new Map(); // execution id -> array of arrival times
let delivered = 0;
let lastDelivery = 0;
async function connect() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace("http", "ws") + "/graphql/ws", "graphql-transport-ws");
    ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${viewer}` } })));
    ws.on("error", reject);
    ws.on("message", (data) => {
      const message = JSON.parse(data);
      if (message.type === "connection_ack") {
        ws.send(JSON.stringify({ type: "subscribe", id: "1", payload: { query: "subscription { executionEvents(environment: STAGING) { cursor kind execution { id } } }" } }));
        resolve(ws);
      } else if (message.type === "next") {
        const event = message.payload.data.executionEvents;
        const now = performance.now();
        delivered++;
        lastDelivery = now;
        if (event.kind === "STARTED") {
          (arrivals.get(event.execution.id) ?? arrivals.set(event.execution.id, []).get(event.execution.id)).push(now);
        }
      } else if (message.type === "ping") {
        ws.send(JSON.stringify({ type: "pong" }));
      }
    });
  });
}
const sockets = [];
for (let i = 0; i < subscribers; i += 250) {
  sockets.push(...(await Promise.all(Array.from({ length: Math.min(250, subscribers - i) }, connect))));
}
await sleep(1000);
const rssIdle = rssKiB(server.pid);

// Ingest executions (start + finish = 2 events each) and time their delivery.
const sentAt = new Map();
const ingestStart = performance.now();
for (let i = 0; i < executions; i++) {
  const sent = performance.now();
  const started = await runtime("/executions", { agent: "bot", input: { i } });
  // Events carry the GraphQL global id of the execution (README: "The API contract").
  sentAt.set(Buffer.from(`Execution:STAGING:${started.id}`).toString("base64url"), sent);
  await runtime(`/executions/${started.id}/finish`, { status: "SUCCEEDED", output: { i } });
}
const expected = executions * 2 * subscribers;
for (let i = 0; delivered < expected && i < 1200; i++) await sleep(100);
const latencies = [];
for (const [id, times] of arrivals) for (const t of times) latencies.push(t - sentAt.get(id));
const seconds = (lastDelivery - ingestStart) / 1000;

console.log(JSON.stringify({
  backend: postgres ? "postgres" : "sqlite",
  subscribers,
  executions,
  eventsDelivered: delivered,
  eventsExpected: expected,
  latencyMs: { p50: +percentile(latencies, 50).toFixed(1), p99: +percentile(latencies, 99).toFixed(1) },
  deliveredPerSecond: Math.round(delivered / seconds),
  serverRssKiB: { before: rssBefore, withIdleSubscribers: rssIdle, perIdleSubscription: +((rssIdle - rssBefore) / subscribers).toFixed(1) },
  ingestedSpansPerSecond: Math.round(spansPerSecond),
}));
for (const ws of sockets) ws.terminate();
server.kill("SIGTERM");
await sleep(500);
if (database) execFileSync("psql", [postgres, "-qc", `DROP DATABASE ${database} WITH (FORCE)`]);
process.exit(delivered === expected ? 0 : 1);
