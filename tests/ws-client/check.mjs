// Drives a running Runflow server with the real `graphql-ws` client:
//  1. a subscription to executionEvents receives the events of an execution that a runtime
//     reports through the runtime API (STARTED then FINISHED), with cursors;
//  2. a bad token is refused with close code 4403, as graphql-ws expects;
//  3. subscribing to another tenant's session fails with NOT_FOUND.
// Usage: RUNFLOW_URL=http://127.0.0.1:PORT VIEWER_TOKEN=... RUNTIME_TOKEN=... OTHER_TOKEN=... node check.mjs
// Prints one JSON line with the results; exits non-zero on any failure.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const url = process.env.RUNFLOW_URL;
const wsUrl = url.replace("http://", "ws://") + "/graphql/ws";
const fail = (message) => {
  console.error("FAIL: " + message);
  process.exit(1);
};
const timeout = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error("timeout: " + what)), ms));

function client(token, onClosed) {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
    on: { closed: onClosed ?? (() => {}) },
  });
}

async function runtime(path, body) {
  const response = await fetch(`${url}/v1/runtime${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${process.env.RUNTIME_TOKEN}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) fail(`${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

// 1. Events arrive, in order, with cursors.
const viewer = client(process.env.VIEWER_TOKEN);
const events = [];
const done = new Promise((resolve, reject) => {
  viewer.subscribe(
    { query: 'subscription { executionEvents(environment: STAGING, after: "0") { cursor kind execution { id status } } }' },
    {
      next: (value) => {
        if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
        events.push(value.data.executionEvents);
        if (events.length === 2) resolve();
      },
      error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
      complete: () => {},
    },
  );
});

const started = await runtime("/executions", { agent: "bot", input: { from: "node" } });
await runtime(`/executions/${started.id}/finish`, { status: "SUCCEEDED", output: { ok: true } });
await Promise.race([done, timeout(10000, "execution events")]);
if (events[0].kind !== "STARTED" || events[1].kind !== "FINISHED") fail("kinds " + JSON.stringify(events));
// GraphQL ids are global (README, "The API contract"); the runtime API returns the bare UUID.
const globalId = Buffer.from(`Execution:STAGING:${started.id}`).toString("base64url");
if (events.some((e) => e.execution.id !== globalId)) fail("ids " + JSON.stringify(events));
if (!(Number(events[1].cursor) > Number(events[0].cursor))) fail("cursors " + JSON.stringify(events));
await viewer.dispose();

// 2. A bad token: the socket closes with 4403.
const closeCode = await Promise.race([
  new Promise((resolve) => {
    const bad = client("not-a-token", (event) => resolve(event.code));
    bad.subscribe({ query: "subscription { releaseEvents(environment: STAGING) { cursor } }" }, {
      next: () => {},
      error: () => {},
      complete: () => {},
    });
  }),
  timeout(10000, "close on bad token"),
]);
if (closeCode !== 4403) fail("expected close code 4403, got " + closeCode);

// 3. Another tenant's session id is NOT_FOUND at subscribe time.
const session = await runtime("/sessions", { title: "node check" });
const other = client(process.env.OTHER_TOKEN);
const refusal = await Promise.race([
  new Promise((resolve) => {
    other.subscribe(
      { query: `subscription { sessionEvents(environment: STAGING, sessionId: "${session.id}") { cursor } }` },
      { next: (value) => resolve(value), error: (errors) => resolve({ errors }), complete: () => {} },
    );
  }),
  timeout(10000, "session refusal"),
]);
const code = (refusal.errors?.[0] ?? refusal.errors)?.extensions?.code;
if (code !== "NOT_FOUND") fail("expected NOT_FOUND, got " + JSON.stringify(refusal));
await other.dispose();

console.log(JSON.stringify({ ok: true, events: events.map((e) => e.kind), closeCode, refusal: code }));
process.exit(0);
