// Copies the pinned browser files from node_modules into dashboard/ (the binary embeds them).
//   npm ci --prefix tests/browser && npm run --prefix tests/browser vendor
// With --check (CI): fails when a committed file differs from the pinned npm package's.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const modules = join(here, 'node_modules');

// [package, file in the package, destination under dashboard/]
const FILES = [
  ['htm', 'preact/standalone.module.js', 'vendor/htm-preact-standalone.module.js'],
  ['htm', 'LICENSE', 'vendor/LICENSE.htm.txt'],
  ['react', 'umd/react.production.min.js', 'graphiql/vendor/react.production.min.js'],
  ['react', 'LICENSE', 'graphiql/vendor/LICENSE.react.txt'],
  ['react-dom', 'umd/react-dom.production.min.js', 'graphiql/vendor/react-dom.production.min.js'],
  ['react-dom', 'LICENSE', 'graphiql/vendor/LICENSE.react-dom.txt'],
  ['graphiql', 'graphiql.min.js', 'graphiql/vendor/graphiql.min.js'],
  ['graphiql', 'graphiql.min.css', 'graphiql/vendor/graphiql.min.css'],
  ['graphiql', 'LICENSE', 'graphiql/vendor/LICENSE.graphiql.txt'],
];

const check = process.argv.includes('--check');
const versions = {};
let stale = 0;
for (const [pkg, file, dest] of FILES) {
  versions[pkg] = JSON.parse(readFileSync(join(modules, pkg, 'package.json'), 'utf8')).version;
  const source = readFileSync(join(modules, pkg, file));
  const target = join(root, 'dashboard', dest);
  if (check) {
    let current = null;
    try { current = readFileSync(target); } catch { /* missing */ }
    if (!current || !current.equals(source)) {
      console.error(`dashboard/${dest} differs from ${pkg}@${versions[pkg]}/${file}: run \`npm run --prefix tests/browser vendor\``);
      stale++;
    }
  } else {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, source);
  }
}
const manifest = JSON.stringify({ note: 'Written by tests/browser/vendor.mjs from the pinned npm packages; do not edit.', versions }, null, 2) + '\n';
const manifestPath = join(root, 'dashboard', 'vendor', 'VERSIONS.json');
if (check) {
  let current = '';
  try { current = readFileSync(manifestPath, 'utf8'); } catch { /* missing */ }
  if (current !== manifest) { console.error('dashboard/vendor/VERSIONS.json is stale'); stale++; }
  if (stale) process.exit(1);
  console.log(`vendored files match ${Object.entries(versions).map(([p, v]) => `${p}@${v}`).join(', ')}`);
} else {
  writeFileSync(manifestPath, manifest);
  console.log('vendored', FILES.length, 'files');
}
