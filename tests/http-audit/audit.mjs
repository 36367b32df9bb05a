// Runs the graphql-http audit (GraphQL over HTTP spec conformance) against a running server.
// Usage: RUNFLOW_URL=http://127.0.0.1:PORT node audit.mjs
// Prints one JSON line: {"ok": n, "notice": [...], "warn": [...], "error": [...]} where each
// list names the audits of that status; exits non-zero when any audit warns or errs.
import { auditServer } from "graphql-http";

const url = process.env.RUNFLOW_URL + "/graphql";
const results = await auditServer({ url });
const summary = { ok: 0, notice: [], warn: [], error: [] };
for (const result of results) {
  if (result.status === "ok") {
    summary.ok += 1;
  } else {
    const detail = result.reason ? `: ${result.reason}` : "";
    summary[result.status].push(`${result.id} ${result.name}${detail}`);
  }
}
console.log(JSON.stringify(summary));
process.exit(summary.warn.length + summary.error.length === 0 ? 0 : 1);
