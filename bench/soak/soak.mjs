// Soak test: a bounded mixed load on loopback for a configurable time, against one server on
// SQLite or two replicas (two processes) on one PostgreSQL database.
//
// Load, per tenant: runtime ingestion (executions started and finished, spans, session
// messages), deploys, prompt edits and publishes; plus 1,000 live subscribers spread over the
// tenants and servers, one slow subscriber that stops reading for a minute at a time, and
// subscribers that drop their socket and resume with their last cursor.
//
// Reports: requests by status (and GraphQL error code), latency p50/p99 per kind, events lost
// (every committed event must reach every live subscriber of its tenant and environment: the
// log's own replay is the truth, checked by cursor), duplicates, server RSS over time.
//
// Usage (after `cargo build` and `npm ci --prefix tests/ws-client`):
//   node bench/soak/soak.mjs [--duration 600] [--tenants 4] [--subscribers 1000]
//        [--postgres postgres://postgres@127.0.0.1:5432/test] [--replicas 2] [--binary target/release/runflow]
//        [--rss-every 10] [--warmup 120] [--server-env NAME=VALUE,...]
// Memory is sampled every --rss-every seconds (RSS, and its anonymous/file/shared parts); the
// report gives it at start (subscribers connected), after --warmup seconds of load, and at the
// end, with the machine's load average. --server-env passes extra variables to the servers
// (for experiments such as MALLOC_ARENA_MAX=2).
// Every connection goes to 127.0.0.1; the script starts and stops its own servers. Exit code 0
// only when nothing was lost or duplicated, no unexpected 5xx happened and every answer was a
// success or a designed refusal (see DESIGNED_CODES): a load that silently fails proves nothing.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { randomUUID } from "node:crypto";
import WebSocket from "../../tests/ws-client/node_modules/ws/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const duration = Number(args.duration ?? 600) * 1000;
const tenantCount = Number(args.tenants ?? 4);
const subscriberCount = Number(args.subscribers ?? 1000);
const postgres = args.postgres;
const replicas = postgres ? Number(args.replicas ?? 2) : 1;
const rssEvery = Number(args["rss-every"] ?? 10) * 1000;
const warmup = Number(args.warmup ?? 120) * 1000;
const serverEnv = Object.fromEntries(
  (args["server-env"] ?? "")
    .split(",")
    .filter(Boolean)
    .map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]),
);
const binary = args.binary ?? (existsSync(join(root, "target", "release", "runflow")) ? join(root, "target", "release", "runflow") : join(root, "target", "debug", "runflow"));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const freePort = () =>
  new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
const percentile = (values, p) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return +sorted[Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)))].toFixed(1);
};
const statusKiB = (pid, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);
const rssMiB = (pid) => +(statusKiB(pid, "VmRSS") / 1024).toFixed(1);
// RSS split into heap and other anonymous memory, mapped files (the binary) and shared memory
// (SQLite's WAL index), plus the thread count.
const memory = (pid) => ({
  rss: rssMiB(pid),
  anon: +(statusKiB(pid, "RssAnon") / 1024).toFixed(1),
  file: +(statusKiB(pid, "RssFile") / 1024).toFixed(1),
  shmem: +(statusKiB(pid, "RssShmem") / 1024).toFixed(1),
  threads: statusKiB(pid, "Threads"),
});
const load = () => +loadavg()[0].toFixed(2);

// ---- servers
let database;
let databaseUrl;
if (postgres) {
  database = "rf_soak_" + randomUUID().replaceAll("-", "").slice(0, 12);
  execFileSync("psql", [postgres, "-qc", `CREATE DATABASE ${database}`]);
  databaseUrl = postgres.replace(/\/[^/]*$/, "/" + database);
}
const sqliteDir = mkdtempSync(join(tmpdir(), "runflow-soak-"));
const baseEnv = {
  PATH: process.env.PATH,
  RUNFLOW_JWT_SECRET: "soak-secret-soak-secret-soak-secret-0123456",
  RUNFLOW_WORKERS: "0",
  RUST_LOG: "warn",
  ...serverEnv,
  RUNFLOW_DATABASE_URL: databaseUrl ?? `sqlite://${join(sqliteDir, "runflow.db")}?mode=rwc`,
};
const servers = [];
for (let r = 0; r < replicas; r++) {
  const port = await freePort();
  const env = { ...baseEnv, RUNFLOW_LISTEN: `127.0.0.1:${port}`, RUNFLOW_DATA_DIR: mkdtempSync(join(tmpdir(), "runflow-soak-data-")) };
  const process_ = spawn(binary, [], { env, stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  process_.stderr.on("data", (chunk) => {
    log = (log + chunk).slice(-20000);
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(url + "/readyz")).ok) break;
    } catch {}
    if (i > 400) throw new Error(`runflow did not start: ${log}`);
    await sleep(50);
  }
  servers.push({ url, process: process_, env, log: () => log });
  console.error(`server ${r}: pid ${process_.pid}, ${url}`);
  // Replicas migrate the same database: start them one after the other.
}
const mint = (tenant, ...extra) =>
  execFileSync(binary, ["token", "--tenant", tenant, "--ttl", "4h", ...extra], { env: servers[0].env }).toString().trim();

// ---- request accounting
const statuses = {}; // "kind status" -> count
const graphqlCodes = {}; // "kind code" -> count
const latencies = {}; // kind -> [ms]
let unexpected5xx = 0;
// Answers the load is designed to get besides success: a publish whose reviewed plan was
// overtaken (CONFLICT), a plan with nothing to publish (BAD_USER_INPUT), rate limits and load
// shedding. Anything else (a 4xx, a GraphQL error such as a stale query that no longer
// validates) means the load did not do what it claims, and fails the run.
const DESIGNED_CODES = { publish: ["CONFLICT"], publishPlan: ["BAD_USER_INPUT"] };
const unexpectedAnswers = {};
function account(kind, status, ms, codes = []) {
  statuses[`${kind} ${status}`] = (statuses[`${kind} ${status}`] ?? 0) + 1;
  (latencies[kind] ??= []).push(ms);
  for (const code of codes) graphqlCodes[`${kind} ${code}`] = (graphqlCodes[`${kind} ${code}`] ?? 0) + 1;
  const designed = status === 429 || (status === 503 && codes.some((c) => c === "SERVICE_UNAVAILABLE" || c === "TIMEOUT"));
  if (status >= 500 && !designed) unexpected5xx++;
  const refused = (typeof status !== "number" || status >= 400) && !designed;
  const odd = codes.filter((c) => !(designed || (DESIGNED_CODES[kind] ?? []).includes(c)));
  if (refused || odd.length > 0) {
    const key = `${kind} ${status} ${odd.join(",")}`.trim();
    unexpectedAnswers[key] = (unexpectedAnswers[key] ?? 0) + 1;
  }
}
async function request(kind, url, init) {
  const start = performance.now();
  let status = 0;
  let body = null;
  try {
    const response = await fetch(url, init);
    status = response.status;
    const text = await response.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  } catch (error) {
    status = "network-error";
  }
  const codes = [];
  if (body?.errors) for (const e of body.errors) codes.push(e.extensions?.code ?? "NO_CODE");
  if (body?.error?.code) codes.push(body.error.code);
  account(kind, status, performance.now() - start, codes);
  return { status, body };
}
const pick = (list) => list[Math.floor(Math.random() * list.length)];

// ---- tenants and their setup
const tenants = [];
for (let t = 0; t < tenantCount; t++) {
  const name = `soak${t}${randomUUID().slice(0, 6)}`;
  tenants.push({
    name,
    developer: mint(name, "--role", "developer"),
    publisher: mint(name, "--role", "publisher"),
    viewer: mint(name, "--role", "viewer"),
    runtime: mint(name, "--role", "runtime", "--environment", "staging"),
  });
}
const gql = (tenant, token, kind, query, variables) =>
  request(kind, pick(servers).url + "/graphql", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
const runtime = (tenant, kind, path, body) =>
  request(kind, `${pick(servers).url}/v1/runtime${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${tenant.runtime}` },
    body: JSON.stringify(body),
  });
const DEPLOY = "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { id } } }";
const deployInput = (n) => ({
  input: {
    slug: "bot",
    message: `soak ${n}`,
    files: [
      { path: "runflow.toml", content: 'name = "bot"\nentrypoint = ["python3", "main.py"]\n' },
      { path: "main.py", content: `print(${n})\n` },
    ],
  },
});
async function publish(tenant) {
  const plan = await gql(tenant, tenant.publisher, "publishPlan", "{ publishPlan(environment: PRODUCTION, input: {all: true}) { fingerprint } }", {});
  const fingerprint = plan.body?.data?.publishPlan?.fingerprint;
  if (!fingerprint) return;
  await gql(tenant, tenant.publisher, "publish", "mutation($f: String!) { publish(environment: PRODUCTION, input: {all: true, fingerprint: $f}) { release { number } } }", { f: fingerprint });
}
for (const tenant of tenants) {
  const deployed = await gql(tenant, tenant.developer, "deploy", DEPLOY, deployInput(0));
  if (!deployed.body?.data?.deployAgent) throw new Error(`setup: deploy failed: ${JSON.stringify(deployed.body)}`);
  await publish(tenant);
  const session = await runtime(tenant, "createSession", "/sessions", { title: "soak" });
  if (!session.body?.id) throw new Error(`setup: createSession failed: ${JSON.stringify(session.body)}`);
  tenant.session = session.body.id;
}

// ---- subscribers
const TOPICS = [
  { field: "executionEvents", environment: "STAGING", share: 0.7, select: "cursor kind execution { id status }" },
  { field: "sessionEvents", environment: "STAGING", share: 0.15, select: "cursor kind message { id }" },
  { field: "releaseEvents", environment: "PRODUCTION", share: 0.15, select: "cursor kind release { number }" },
];
const wsStats = { connects: 0, closes: {}, slowConsumer: 0, tooLarge: 0, errors: {}, resubscribesAfterError: 0 };
// A subscribe refused with one of these (the database busy beyond its timeout, a limit) is tried
// again from the last cursor, as a client of the protocol would.
const RETRYABLE = ["SERVICE_UNAVAILABLE", "RATE_LIMITED", "TIMEOUT"];
class Subscriber {
  constructor(index, tenant, topic, server, slow = false) {
    Object.assign(this, { index, tenant, topic, server, slow });
    this.received = [];
    this.last = "0"; // every subscriber starts from the log's start: it must see everything
    this.generation = 0;
    this.stopped = false;
  }
  connect() {
    const generation = ++this.generation;
    return new Promise((resolve) => {
      const ws = new WebSocket(this.server.url.replace("http", "ws") + "/graphql/ws", "graphql-transport-ws");
      this.ws = ws;
      let acknowledged = false;
      ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${this.tenant.viewer}` } })));
      ws.on("error", () => {});
      ws.on("close", (code) => {
        wsStats.closes[code] = (wsStats.closes[code] ?? 0) + 1;
        if (!acknowledged) resolve(false);
        if (!this.stopped && generation === this.generation) {
          // Dropped (1013: over a designed limit, 4504, ...): come back and resume.
          setTimeout(() => this.connect(), code === 1013 ? 1000 + Math.random() * 2000 : 200);
        }
      });
      ws.on("message", (data) => {
        const message = JSON.parse(data);
        if (message.type === "connection_ack") {
          acknowledged = true;
          wsStats.connects++;
          this.subscribe();
          resolve(true);
        } else if (message.type === "ping") {
          ws.send(JSON.stringify({ type: "pong" }));
        } else if (message.type === "next") {
          const errors = message.payload.errors;
          if (errors) {
            const code = errors[0]?.extensions?.code;
            if (code === "SLOW_CONSUMER") wsStats.slowConsumer++;
            else if (code === "MESSAGE_TOO_LARGE") wsStats.tooLarge++;
            else wsStats.errors[code] = (wsStats.errors[code] ?? 0) + 1;
            return;
          }
          const event = message.payload.data[this.topic.field];
          this.received.push(event.cursor);
          this.last = event.cursor;
        } else if (message.type === "complete") {
          // Ended by the server (SLOW_CONSUMER): resume from the last cursor.
          if (!this.stopped) this.subscribe();
        } else if (message.type === "error") {
          const code = message.payload?.[0]?.extensions?.code ?? "error";
          wsStats.errors[code] = (wsStats.errors[code] ?? 0) + 1;
          if (!this.stopped && RETRYABLE.includes(code)) {
            setTimeout(() => {
              if (!this.stopped && generation === this.generation && ws.readyState === WebSocket.OPEN) {
                wsStats.resubscribesAfterError++;
                this.subscribe();
              }
            }, 500 + Math.random() * 1000);
          }
        }
      });
    });
  }
  subscribe() {
    this.subscription = (this.subscription ?? 0) + 1;
    const query = `subscription($after: String) { ${this.topic.field}(environment: ${this.topic.environment}, after: $after) { ${this.topic.select} } }`;
    this.ws.send(JSON.stringify({ type: "subscribe", id: `s${this.subscription}`, payload: { query, variables: { after: this.last } } }));
  }
  reconnect() {
    this.generation++;
    this.ws.terminate();
    return this.connect();
  }
}
const subscribers = [];
for (let i = 0; i < subscriberCount; i++) {
  const r = (i % 100) / 100;
  const topic = r < TOPICS[0].share ? TOPICS[0] : r < TOPICS[0].share + TOPICS[1].share ? TOPICS[1] : TOPICS[2];
  subscribers.push(new Subscriber(i, tenants[i % tenants.length], topic, servers[i % servers.length]));
}
const slow = new Subscriber(subscriberCount, tenants[0], TOPICS[0], servers[0], true);
subscribers.push(slow);
const connectStart = performance.now();
for (let i = 0; i < subscribers.length; i += 100) {
  await Promise.all(subscribers.slice(i, i + 100).map((s) => s.connect()));
}
const connectSeconds = ((performance.now() - connectStart) / 1000).toFixed(1);
await sleep(2000);
const rss = servers.map((s) => [rssMiB(s.process.pid)]);
const loads = [load()];
const memoryStart = servers.map((s) => memory(s.process.pid));
let memoryWarm = null;
console.error(`subscribers connected in ${connectSeconds} s; load for ${duration / 1000} s`);

// ---- the load
const until = performance.now() + duration;
let running = true;
async function loop(every, body) {
  while (running && performance.now() < until) {
    const start = performance.now();
    await body();
    await sleep(Math.max(0, every - (performance.now() - start)));
  }
}
const workers = [];
for (const tenant of tenants) {
  let deploys = 0;
  let edits = 0;
  // Runtime ingestion: an execution (started, spans, finished) about 4 times a second.
  workers.push(
    loop(250, async () => {
      const started = await runtime(tenant, "startExecution", "/executions", { agent: "bot", input: { at: Date.now() } });
      const id = started.body?.id;
      if (!id) return;
      await runtime(tenant, "recordSpans", `/executions/${id}/spans`, {
        spans: Array.from({ length: 5 }, (_, i) => ({ name: `step-${i}`, kind: "LLM", startTime: new Date().toISOString(), attributes: { i } })),
      });
      await runtime(tenant, "finishExecution", `/executions/${id}/finish`, { status: "SUCCEEDED", output: { ok: true } });
    }),
  );
  // Session messages, twice a second.
  workers.push(loop(500, () => runtime(tenant, "addMessage", `/sessions/${tenant.session}/messages`, { role: "user", content: "hello" })));
  // Prompt edits every second, deploys every 5 s, publishes every 10 s.
  workers.push(
    loop(1000, () =>
      gql(tenant, tenant.developer, "savePromptDraft", "mutation($input: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $input) { slug } }", {
        input: { slug: "greeting", template: `Hello {{name}} #${++edits}` },
      }),
    ),
  );
  workers.push(loop(5000, () => gql(tenant, tenant.developer, "deploy", DEPLOY, deployInput(++deploys))));
  workers.push(loop(10000, () => publish(tenant)));
  // Reads, as a dashboard would.
  workers.push(loop(1000, () => gql(tenant, tenant.viewer, "listExecutions", "{ executions(environment: STAGING, first: 20) { edges { node { id status agent { slug } } } } }", {})));
}
// Reconnects with cursors: 10 random subscribers every 5 s.
let reconnects = 0;
workers.push(
  loop(5000, async () => {
    for (let i = 0; i < 10; i++) {
      const s = pick(subscribers.filter((s) => !s.slow));
      reconnects++;
      s.reconnect();
    }
  }),
);
// The slow subscriber: stops reading (and answering pings) for 60 s out of every 75 s; the
// server ends it (SLOW_CONSUMER when its queue fills, else 4504 at the pong timeout) and it
// resumes from its last cursor.
workers.push(
  loop(75000, async () => {
    const socket = slow.ws?._socket;
    socket?.pause();
    await sleep(60000);
    socket?.resume();
  }),
);
// Memory (and the machine's load average) every --rss-every seconds; the full breakdown once
// the warm-up is over.
const loadStart = performance.now();
workers.push(
  (async () => {
    await sleep(rssEvery);
    await loop(rssEvery, async () => {
      servers.forEach((s, i) => rss[i].push(rssMiB(s.process.pid)));
      loads.push(load());
      if (memoryWarm === null && performance.now() - loadStart >= warmup) memoryWarm = servers.map((s) => memory(s.process.pid));
    });
  })(),
);
await Promise.all(workers);
running = false;
slow.ws?._socket?.resume();
const memoryEnd = servers.map((s) => memory(s.process.pid));

// ---- settle, then compare with the truth (the log's replay)
const settleStart = performance.now();
let previous = -1;
for (;;) {
  await sleep(2000);
  const total = subscribers.reduce((n, s) => n + s.received.length, 0);
  if (total === previous || performance.now() - settleStart > 120000) break;
  previous = total;
}
async function truth(tenant, topic) {
  const reader = new Subscriber(-1, tenant, topic, servers[0]);
  await reader.connect();
  let count = -1;
  while (count !== reader.received.length) {
    count = reader.received.length;
    await sleep(1500);
  }
  reader.stopped = true;
  reader.ws.terminate();
  return reader.received;
}
let lost = 0;
let duplicates = 0;
let expectedDeliveries = 0;
let subscribersWithLoss = 0;
for (const tenant of tenants) {
  for (const topic of TOPICS) {
    const all = await truth(tenant, topic);
    const ids = new Set(all);
    if (ids.size !== all.length) duplicates += all.length - ids.size;
    for (const s of subscribers.filter((s) => s.tenant === tenant && s.topic === topic)) {
      s.stopped = true;
      const got = new Set(s.received);
      duplicates += s.received.length - got.size;
      let missing = 0;
      for (const id of ids) if (!got.has(id)) missing++;
      lost += missing;
      if (missing > 0) subscribersWithLoss++;
      expectedDeliveries += ids.size;
    }
  }
}
for (const s of subscribers) s.ws?.terminate();

const latency = Object.fromEntries(Object.entries(latencies).map(([kind, values]) => [kind, { n: values.length, p50: percentile(values, 50), p99: percentile(values, 99) }]));
const all = Object.values(latencies).flat();
const report = {
  backend: postgres ? `postgres, ${replicas} replicas` : "sqlite",
  binary: binary.includes("release") ? "release" : "debug",
  durationSeconds: duration / 1000,
  tenants: tenantCount,
  subscribers: subscriberCount + 1,
  subscribersConnectSeconds: +connectSeconds,
  requests: all.length,
  requestsByStatus: statuses,
  graphqlErrorCodes: graphqlCodes,
  latencyMs: { all: { p50: percentile(all, 50), p99: percentile(all, 99) }, ...latency },
  websockets: { ...wsStats, reconnectsWithCursor: reconnects, slowSubscriberReceived: slow.received.length },
  deliveriesExpected: expectedDeliveries,
  eventsLost: lost,
  subscribersWithLoss,
  duplicates,
  unexpected5xx,
  unexpectedAnswers,
  serverMemoryMiB: servers.map((_, i) => ({
    start: memoryStart[i],
    afterWarmup: memoryWarm?.[i] ?? null,
    warmupSeconds: warmup / 1000,
    end: memoryEnd[i],
    rssEverySeconds: rssEvery / 1000,
    rssSamples: rss[i],
  })),
  loadAverage1m: { min: Math.min(...loads), max: Math.max(...loads), mean: +(loads.reduce((a, b) => a + b, 0) / loads.length).toFixed(2), samples: loads },
};
console.log(JSON.stringify(report, null, 2));
for (const s of servers) s.process.kill("SIGTERM");
await sleep(1000);
if (database) execFileSync("psql", [postgres, "-qc", `DROP DATABASE ${database} WITH (FORCE)`]);
process.exit(lost === 0 && duplicates === 0 && unexpected5xx === 0 && Object.keys(unexpectedAnswers).length === 0 ? 0 : 1);
