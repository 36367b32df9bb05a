// Validates every operation in dashboard/operations/*.graphql against the repository's
// schema.graphql (CI fails when a schema change breaks the dashboard).
//   node tests/browser/validate.mjs
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate } from 'graphql';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const schema = buildSchema(readFileSync(process.env.SCHEMA || join(root, 'schema.graphql'), 'utf8'));
const dir = join(root, 'dashboard', 'operations');
let failures = 0;
let operations = 0;
const names = new Set();
for (const file of readdirSync(dir).filter((f) => f.endsWith('.graphql')).sort()) {
  const text = readFileSync(join(dir, file), 'utf8');
  let document;
  try {
    document = parse(text);
  } catch (error) {
    console.error(`${file}: ${error.message}`);
    failures++;
    continue;
  }
  for (const def of document.definitions) {
    if (def.kind !== 'OperationDefinition') continue;
    operations++;
    if (!def.name) { console.error(`${file}: an operation has no name`); failures++; continue; }
    if (names.has(def.name.value)) { console.error(`${file}: duplicate operation ${def.name.value}`); failures++; }
    names.add(def.name.value);
  }
  for (const error of validate(schema, document)) {
    console.error(`${file}: ${error.message}`);
    failures++;
  }
}
if (failures) {
  console.error(`${failures} problem(s) in dashboard/operations`);
  process.exit(1);
}
console.log(`${operations} dashboard operations valid against schema.graphql`);
