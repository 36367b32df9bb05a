// The breaking-change check: compares schema.graphql with schema.baseline.graphql (the last
// accepted contract) using graphql-inspector; fails on any breaking change.
// Usage:
//   node schema-diff.mjs [BASELINE CURRENT]   check (defaults: the repository's two files)
//   node schema-diff.mjs --accept "why"       accept the current schema as the new baseline; its
//                                            breaking changes, if any, are appended to
//                                            schema.breaking.md with the reason (commit both)
// Prints breaking and dangerous changes; exits 1 on a breaking change that was not accepted.
import { CriticalityLevel, diff } from "@graphql-inspector/core";
import { buildSchema } from "graphql";
import { appendFileSync, copyFileSync, readFileSync } from "node:fs";

const root = new URL("../../", import.meta.url);
const args = process.argv.slice(2);
const accept = args[0] === "--accept";
const baselinePath = !accept && args[0] ? args[0] : new URL("schema.baseline.graphql", root);
const currentPath = (!accept && args[1]) || new URL("schema.graphql", root);
const load = (path) => buildSchema(readFileSync(path, "utf8"));
const changes = await diff(load(baselinePath), load(currentPath));
const breaking = changes.filter((c) => c.criticality.level === CriticalityLevel.Breaking);

if (accept) {
  const reason = args[1];
  if (!reason) {
    console.error('say why: node schema-diff.mjs --accept "the reason"');
    process.exit(2);
  }
  if (breaking.length > 0) {
    const day = new Date().toISOString().slice(0, 10);
    const lines = breaking.map((c) => `- ${c.message}`).join("\n");
    appendFileSync(new URL("schema.breaking.md", root), `\n## ${day}: ${reason}\n\n${lines}\n`);
  }
  copyFileSync(currentPath, baselinePath);
  console.log(`accepted: ${breaking.length} breaking change(s) recorded in schema.breaking.md; commit it with schema.baseline.graphql`);
  process.exit(0);
}

for (const change of changes.filter((c) => c.criticality.level !== CriticalityLevel.NonBreaking)) {
  console.log(`${change.criticality.level.padEnd(10)} ${change.message}`);
}
if (breaking.length > 0) {
  console.error(
    `${breaking.length} breaking change(s) against schema.baseline.graphql. If intended, run ` +
      '`node tests/client-cache/schema-diff.mjs --accept "why"` and commit schema.baseline.graphql and schema.breaking.md.',
  );
  process.exit(1);
}
console.log(`no breaking change against schema.baseline.graphql (${changes.length} change(s) in all)`);
