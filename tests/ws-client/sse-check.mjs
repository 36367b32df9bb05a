// Drives a running Runflow server's /graphql/stream with the real `graphql-sse` client, in its
// default "distinct connections" mode (one HTTP request per subscription):
//  1. a subscription to executionEvents receives the events of an execution that a runtime
//     reports through the runtime API (STARTED then FINISHED), with global ids and cursors;
//  2. resuming with `after` set to the first event's cursor replays what followed it;
//  3. a bad token is refused with 401 before the stream starts (a NetworkError for the client);
//  4. subscribing to another tenant's session fails with NOT_FOUND (tenants never mix).
// Usage: RUNFLOW_URL=http://127.0.0.1:PORT VIEWER_TOKEN=... RUNTIME_TOKEN=... OTHER_TOKEN=... node sse-check.mjs
// Prints one JSON line with the results; exits non-zero on any failure.
import { createClient, NetworkError } from "graphql-sse";

import { checkExecutionEvents, expectForeignSessionRefused, fail, runExecution, timeout } from "./checks.mjs";

const streamUrl = process.env.RUNFLOW_URL + "/graphql/stream";

function client(token) {
  return createClient({
    url: streamUrl,
    headers: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
}

// Collects `count` results of a subscription, then stops it.
function collect(sse, query, count) {
  const results = [];
  let dispose = () => {};
  const done = new Promise((resolve, reject) => {
    dispose = sse.subscribe(
      { query },
      {
        next: (value) => {
          if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
          results.push(value.data);
          if (results.length === count) resolve(results);
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => {},
      },
    );
  });
  return done.finally(() => dispose());
}

const subscription = (after) =>
  `subscription { executionEvents(environment: STAGING, after: "${after}") { cursor kind execution { id status } } }`;

// 1. Events arrive, in order, with cursors.
const viewer = client(process.env.VIEWER_TOKEN);
const live = collect(viewer, subscription("0"), 2);
const started = await runExecution("graphql-sse");
const events = (await Promise.race([live, timeout(10000, "execution events")])).map((d) => d.executionEvents);
checkExecutionEvents(events, started);

// 2. Resume after the first event: the second comes first.
const resumed = await Promise.race([collect(viewer, subscription(events[0].cursor), 1), timeout(10000, "resume")]);
if (resumed[0].executionEvents.cursor !== events[1].cursor) fail("resume " + JSON.stringify(resumed));
viewer.dispose();

// 3. A bad token: 401 before any event.
const refusedStatus = await Promise.race([
  collect(client("not-a-token"), subscription("0"), 1).then(
    () => fail("a bad token was accepted"),
    (error) => (error instanceof NetworkError ? error.response?.status : fail("not a NetworkError: " + error)),
  ),
  timeout(10000, "bad token"),
]);
if (refusedStatus !== 401) fail("expected 401, got " + refusedStatus);

// 4. Another tenant's session id is NOT_FOUND.
const other = client(process.env.OTHER_TOKEN);
const code = await expectForeignSessionRefused(other, "sse check");
other.dispose();

console.log(
  JSON.stringify({ ok: true, events: events.map((e) => e.kind), resumed: true, refusedStatus, refusal: code }),
);
process.exit(0);
