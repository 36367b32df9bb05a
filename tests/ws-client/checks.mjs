// What check.mjs (graphql-ws) and sse-check.mjs (graphql-sse) share: failing with a message,
// timeouts, calls of the runtime API, and the checks both make of the server's answers.
// Reads RUNFLOW_URL and RUNTIME_TOKEN from the environment.

const url = process.env.RUNFLOW_URL;

/** Prints the failure and exits non-zero. */
export const fail = (message) => {
  console.error("FAIL: " + message);
  process.exit(1);
};

/** A promise that rejects after `ms` milliseconds, naming what did not arrive. */
export const timeout = (ms, what) =>
  new Promise((_, reject) => setTimeout(() => reject(new Error("timeout: " + what)), ms));

/** POSTs `body` to the runtime API (`/v1/runtime${path}`) with RUNTIME_TOKEN; the JSON answer. */
export async function runtime(path, body) {
  const response = await fetch(`${url}/v1/runtime${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${process.env.RUNTIME_TOKEN}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) fail(`${path} answered ${response.status}: ${await response.text()}`);
  return response.json();
}

/** Starts an execution of `bot` (input `{ from }`) and finishes it; the started execution. */
export async function runExecution(from) {
  const started = await runtime("/executions", { agent: "bot", input: { from } });
  await runtime(`/executions/${started.id}/finish`, { status: "SUCCEEDED", output: { ok: true } });
  return started;
}

/** The two executionEvents of `started` came in order (STARTED, FINISHED), with its global id
 * and growing cursors. */
export function checkExecutionEvents(events, started) {
  if (events[0].kind !== "STARTED" || events[1].kind !== "FINISHED") fail("kinds " + JSON.stringify(events));
  // GraphQL ids are global (README, "The API contract"); the runtime API returns the bare UUID.
  const globalId = Buffer.from(`Execution:STAGING:${started.id}`).toString("base64url");
  if (events.some((e) => e.execution.id !== globalId)) fail("ids " + JSON.stringify(events));
  if (!(Number(events[1].cursor) > Number(events[0].cursor))) fail("cursors " + JSON.stringify(events));
}

/** Subscribes `other` (a client of another tenant, graphql-ws or graphql-sse) to a session of
 * RUNTIME_TOKEN's tenant; fails unless it is refused with NOT_FOUND. Returns the code. */
export async function expectForeignSessionRefused(other, title) {
  const session = await runtime("/sessions", { title });
  const refusal = await Promise.race([
    new Promise((resolve) => {
      other.subscribe(
        { query: `subscription { sessionEvents(environment: STAGING, sessionId: "${session.id}") { cursor } }` },
        { next: (value) => resolve(value), error: (errors) => resolve({ errors }), complete: () => resolve({}) },
      );
    }),
    timeout(10000, "session refusal"),
  ]);
  const code = (refusal.errors?.[0] ?? refusal.errors)?.extensions?.code;
  if (code !== "NOT_FOUND") fail("expected NOT_FOUND, got " + JSON.stringify(refusal));
  return code;
}
