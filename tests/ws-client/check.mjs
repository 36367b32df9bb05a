// Drives a running Runflow server with the real `graphql-ws` client:
//  1. a subscription to executionEvents receives the events of an execution that a runtime
//     reports through the runtime API (STARTED then FINISHED), with cursors;
//  2. a bad token is refused with close code 4403, as graphql-ws expects;
//  3. subscribing to another tenant's session fails with NOT_FOUND.
// Usage: RUNFLOW_URL=http://127.0.0.1:PORT VIEWER_TOKEN=... RUNTIME_TOKEN=... OTHER_TOKEN=... node check.mjs
// Prints one JSON line with the results; exits non-zero on any failure.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

import { checkExecutionEvents, expectForeignSessionRefused, fail, runExecution, timeout } from "./checks.mjs";

const wsUrl = process.env.RUNFLOW_URL.replace("http://", "ws://") + "/graphql/ws";

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

const started = await runExecution("node");
await Promise.race([done, timeout(10000, "execution events")]);
checkExecutionEvents(events, started);
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
const other = client(process.env.OTHER_TOKEN);
const code = await expectForeignSessionRefused(other, "node check");
await other.dispose();

console.log(JSON.stringify({ ok: true, events: events.map((e) => e.kind), closeCode, refusal: code }));
process.exit(0);
