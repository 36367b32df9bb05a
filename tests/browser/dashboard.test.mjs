// The dashboard in a real browser: Debian's Chromium driven by playwright-core (no browser
// download), against the real `runflow` binary on a free loopback port with a fresh data dir.
// Seeds everything through the public API (GraphQL + runtime API), then checks the issue's
// list and writes docs/screenshots/*.png.
//
//   cargo build -p runflow-api && npm ci --prefix tests/browser && node tests/browser/dashboard.test.mjs
//
// RUNFLOW_BIN overrides the binary (default target/debug/runflow); CHROMIUM the browser
// (default /usr/bin/chromium); RUNFLOW_TEST_POSTGRES_URL runs it on PostgreSQL instead of SQLite.
// Screenshots are written only on SQLite (DASHBOARD_SCREENSHOTS=0 skips them).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR || join(root, 'target');
const BIN = process.env.RUNFLOW_BIN || join(targetDir, 'debug', 'runflow');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = join(root, 'docs', 'screenshots');
const AXE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
const EXECUTIONS = Number(process.env.DASHBOARD_TEST_EXECUTIONS || 1000);

// ---------- the server ----------

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

const dataDir = mkdtempSync(join(tmpdir(), 'runflow-dashboard-'));
const port = await freePort();
const BASE = `http://127.0.0.1:${port}`;
const serverEnv = { ...process.env, RUNFLOW_DATA_DIR: dataDir, RUNFLOW_LISTEN: `127.0.0.1:${port}`, RUNFLOW_WORKERS: '0', RUST_LOG: 'warn' };
// The seed starts 1,000 runtime executions quickly: lift the per-tenant active-execution cap and
// the per-tenant rate limits (both tested by the e2e suite), as the e2e test servers do.
Object.assign(serverEnv, {
  RUNFLOW_MAX_ACTIVE_EXECUTIONS: '100000',
  RUNFLOW_RATE_LIMIT_GRAPHQL: 'off',
  RUNFLOW_RATE_LIMIT_RUNTIME: 'off',
  RUNFLOW_RATE_LIMIT_AGENTS: 'off',
  RUNFLOW_RATE_LIMIT_WEBHOOKS: 'off',
  RUNFLOW_RATE_LIMIT_WS_CONNECTS: 'off',
});
delete serverEnv.RUNFLOW_DATABASE_URL;
// With RUNFLOW_TEST_POSTGRES_URL (postgres://user@host:port/any): the same checks on a fresh
// PostgreSQL database (created with psql), so the live feed runs on LISTEN/NOTIFY.
let postgresDb = null;
if (process.env.RUNFLOW_TEST_POSTGRES_URL) {
  const admin = new URL(process.env.RUNFLOW_TEST_POSTGRES_URL);
  postgresDb = `dashboard_${process.pid}_${Date.now()}`;
  execFileSync('psql', [admin.href, '-qc', `CREATE DATABASE ${postgresDb}`]);
  const target = new URL(admin.href);
  target.pathname = `/${postgresDb}`;
  serverEnv.RUNFLOW_DATABASE_URL = target.href;
  console.log(`on PostgreSQL database ${postgresDb}`);
}
const server = spawn(BIN, ['serve'], { env: serverEnv, stdio: ['ignore', 'pipe', 'pipe'] });
let stdout = '';
let stderr = '';
server.stdout.on('data', (d) => { stdout += d; });
server.stderr.on('data', (d) => { stderr += d; });
const stopServer = () => { try { server.kill('SIGTERM'); } catch { /* gone */ } };
process.on('exit', () => {
  stopServer();
  rmSync(dataDir, { recursive: true, force: true });
  if (postgresDb) {
    try { execFileSync('psql', [process.env.RUNFLOW_TEST_POSTGRES_URL, '-qc', `DROP DATABASE IF EXISTS ${postgresDb} WITH (FORCE)`]); } catch { /* left behind */ }
  }
});

for (let i = 0; ; i++) {
  try { if ((await fetch(`${BASE}/readyz`)).ok) break; } catch { /* not yet */ }
  if (i > 300) throw new Error(`the server did not start:\n${stderr}`);
  await new Promise((r) => setTimeout(r, 100));
}
const signinLink = stdout.match(/http:\/\/\S+\/#signin=\S+/)?.[0];
assert.ok(signinLink, `the first start prints a sign-in link:\n${stdout}`);

const mint = (...args) => execFileSync(BIN, ['token', '--tenant', 'default', ...args], { env: serverEnv }).toString().trim();
const ADMIN = mint('--role', 'admin', '--ttl', '2h');
const VIEWER = mint('--role', 'viewer', '--ttl', '2h', '--subject', 'vera');
const RT_STAGING = mint('--role', 'runtime', '--environment', 'staging', '--ttl', '2h');
const RT_PRODUCTION = mint('--role', 'runtime', '--environment', 'production', '--ttl', '2h');

async function gql(query, variables = {}, token = ADMIN) {
  const response = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`${query.slice(0, 60)}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

async function rt(method, path, body, token = RT_STAGING) {
  const response = await fetch(`${BASE}/v1/runtime${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// ---------- seed ----------

const manifest = 'name = "support-bot"\nentrypoint = ["python3", "main.py"]\nprompts = ["greeting"]\nconnectors = ["crm"]\n';
const deploy = (message, files) => gql(
  'mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { number } } }',
  { input: { slug: 'support-bot', message, files: [{ path: 'runflow.toml', content: manifest }, ...files] } },
);
const saveDraft = (template, modelSettings) => gql(
  'mutation($input: SavePromptDraftInput!) { savePromptDraft(environment: STAGING, input: $input) { revision } }',
  { input: { slug: 'greeting', template, modelSettings } },
);
const setResource = async (key, config) => {
  const data = await gql('{ connector(environment: STAGING, slug: "crm") { resources { key revision } } }');
  const existing = data.connector.resources.find((r) => r.key === key);
  const op = existing ? 'updateConnectorResource' : 'createConnectorResource';
  await gql(`mutation($input: ConnectorResourceInput!) { ${op}(environment: STAGING, input: $input) { revision } }`,
    { input: { connector: 'crm', key, config, expectedRevision: existing?.revision ?? null } });
};
const publishAll = async (note) => {
  const plan = await gql('{ publishPlan(environment: PRODUCTION, input: {all: true}) { fingerprint } }');
  await gql('mutation($input: PublishInput!) { publish(environment: PRODUCTION, input: $input) { release { number } } }',
    { input: { all: true, fingerprint: plan.publishPlan.fingerprint, note } });
};

await deploy('first version', [{ path: 'main.py', content: 'import sys\n\ndef main():\n    print("hello")\n\nmain()\n' }]);
await saveDraft('Hello {{name}}!', { model: 'gpt-4o', temperature: 0.2 });
await gql('mutation { createConnector(environment: STAGING, input: {slug: "crm", kind: "http", config: {baseUrl: "https://crm.example"}}) { revision } }');
await setResource('tickets', { path: '/tickets' });
await publishAll('first launch');
// What the Releases screen will show: a second deploy, a new draft, connector resource changes, a trigger.
await deploy('answer with the user name', [
  { path: 'main.py', content: 'import sys\n\ndef main():\n    name = sys.argv[1] if len(sys.argv) > 1 else "world"\n    print(f"hello {name}")\n\nmain()\n' },
  { path: 'README.md', content: '# support-bot\n\nAnswers support questions.\n' },
]);
await saveDraft('Hello {{name}}, welcome to {{product}}!', { model: 'gpt-4o', temperature: 0.5 });
await setResource('tickets', { path: '/v2/tickets' });
await setResource('users', { path: '/users' });
await gql('mutation { createTrigger(environment: STAGING, input: {name: "nightly", agent: "support-bot", kind: SCHEDULE, schedule: "0 3 * * *"}) { revision } }');
await gql('mutation { createCredential(environment: STAGING, input: {name: "crm-key", kind: "api_key", secret: "sk-test-1234567890"}) { revision } }');
await gql('mutation { createKnowledgeBase(environment: STAGING, input: {name: "handbook", kind: "vector", config: {dimensions: 1536}}) { revision } }');

// 1,000 staging executions (the first screen must stay fast), one with a session and spans.
const started = Date.now();
for (let i = 0; i < EXECUTIONS; i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, EXECUTIONS - i) }, (_, k) => rt('POST', '/executions', { agent: 'support-bot', input: { n: i + k } })));
}
console.log(`seeded ${EXECUTIONS} executions in ${Date.now() - started} ms`);
const chat = await rt('POST', '/sessions', { agent: 'support-bot', title: 'refund question' });
await rt('POST', `/sessions/${chat.id}/messages`, { role: 'user', content: 'Can I get a refund?' });
await rt('POST', `/sessions/${chat.id}/messages`, { role: 'assistant', content: 'Yes, within 30 days.' });
await rt('PUT', '/memory/support-bot/last-topic', { value: 'refunds' });

// ---------- the browser ----------

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
mkdirSync(SHOTS, { recursive: true });
const failures = [];
const cspViolations = [];
const foreignRequests = [];
const results = {};
let lastPage = null;

async function newPage({ token = ADMIN, width = 1280, height = 900 } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  if (token) await context.addInitScript((t) => sessionStorage.setItem('runflow.token', t), token);
  const page = await context.newPage();
  lastPage = page;
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text()); });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith('data:') && !r.url().startsWith(BASE.replace('http', 'ws'))) foreignRequests.push(r.url());
    if (r.url().includes('signin=') || r.url().includes(ADMIN)) failures.push(`a token was sent in a URL: ${r.url()}`);
  });
  return page;
}

let steps = 0;
async function step(name, fn) {
  steps++;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (error) {
    console.log(`FAIL ${name}: ${error.stack || error}`);
    const where = join(tmpdir(), `dashboard-failure-${failures.length}.png`);
    await lastPage?.screenshot({ path: where, fullPage: true }).then(() => console.log(`     screenshot: ${where}`), () => {});
    failures.push(`${name}: ${error.message}`);
  }
}

const url = (env, screen = 'executions', id) => `${BASE}/#/${env}/${screen}${id ? `/${encodeURIComponent(id)}` : ''}`;
const badgeColour = (page) => page.$eval('[data-testid=env-badge]', (e) => getComputedStyle(e).backgroundColor);
const writeShots = !postgresDb && process.env.DASHBOARD_SCREENSHOTS !== '0';
const shot = (page, name) => (writeShots ? page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true }) : Promise.resolve());

async function axe(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`), [], `axe on ${what}`);
}

/** Opens the first item's editor on the screens that expand one. */
async function expand(page, screen) {
  if (screen === 'agents' || screen === 'prompts') {
    await page.locator('main .rows button.linklike').first().click();
    await page.waitForSelector(screen === 'agents' ? 'main .detail dl' : 'main .detail h3');
  }
}

const SCREENS = ['releases', 'executions', 'sessions', 'memory', 'agents', 'prompts', 'connectors', 'triggers', 'shared'];

/** Waits until the URL's screen is rendered (hash navigations do not reload the page). */
async function waitReady(page) {
  const [, env, screen] = new URL(page.url()).hash.match(/^#\/(\w+)\/(\w+)/) || [];
  if (screen) await page.waitForSelector(`main[data-environment="${env}"][data-screen="${screen}"]`);
  await page.waitForFunction(() => !document.querySelector('#app > .loading'));
  await page.waitForSelector('[data-testid=viewer][data-ready]');
  await page.waitForSelector('main h1');
  await page.waitForFunction(() => !document.querySelector('main .loading'));
}

async function enabledEditControls(page) {
  return page.$$eval('[data-edit]', (els) => els.filter((e) => !e.disabled && !e.readOnly).map((e) => e.outerHTML.slice(0, 80)));
}

// ---------- checks ----------

await step('sign-in link: the token moves to session storage and out of the URL', async () => {
  const page = await newPage({ token: null });
  await page.goto(signinLink);
  await page.waitForSelector('[data-testid=viewer][data-ready]');
  assert.ok(!page.url().includes('signin'), page.url());
  assert.match(page.url(), /#\/staging\/executions$/);
  assert.ok(await page.evaluate(() => sessionStorage.getItem('runflow.token')));
  assert.match(await page.textContent('[data-testid=viewer]'), /default.*admin/);
  await page.click('text=Sign out');
  await page.waitForSelector('#token');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('runflow.token')), null);
  await page.context().close();
});

await step('an invalid or expired token returns to the sign-in form', async () => {
  const page = await newPage({ token: 'not-a-token' });
  await page.goto(url('staging', 'releases'));
  await page.waitForSelector('#token');
  assert.match(await page.textContent('main'), /UNAUTHENTICATED/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('runflow.token')), null);
  await axe(page, 'sign-in form');
  await page.context().close();
});

await step(`first screen interactive (measured, not asserted) with ${EXECUTIONS} executions`, async () => {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const page = await newPage();
    await page.goto(url('staging', 'executions'));
    await page.waitForSelector('[data-execution]');
    await page.waitForSelector('#f-status:not([disabled])');
    await page.waitForSelector('[data-testid=viewer][data-ready]');
    times.push(await page.evaluate(() => performance.now()));
    if (i === 0) assert.equal(await page.locator('[data-execution]').count(), 20, 'the list is paginated (20 per page)');
    if (i === 4) {
      await page.click('text=Load more');
      await page.waitForFunction(() => document.querySelectorAll('[data-execution]').length === 40);
    }
    await page.context().close();
  }
  times.sort((a, b) => a - b);
  results.firstScreen = { median: Math.round(times[2]), max: Math.round(times[4]) };
  console.log(`     first screen interactive: median ${results.firstScreen.median} ms, max ${results.firstScreen.max} ms`);
  // A measurement for the README, not a timing assertion: CI machines are shared and noisy.
});

await step('badge amber in staging, emerald in production; switching changes the URL and the data', async () => {
  const page = await newPage();
  await page.goto(url('staging', 'executions'));
  await page.waitForSelector('[data-execution]');
  assert.equal(await badgeColour(page), 'rgb(245, 158, 11)');
  await shot(page, 'staging-executions');
  await page.click('[data-testid=env-badge]');
  await page.waitForSelector('[data-testid=prod-banner]');
  assert.match(page.url(), /#\/production\/executions$/);
  assert.equal(await badgeColour(page), 'rgb(16, 185, 129)');
  await page.waitForSelector('main .rows');
  assert.equal(await page.locator('[data-execution]').count(), 0, 'production shows none of the staging executions');
  await shot(page, 'production-executions');
  await page.reload();
  await page.waitForSelector('[data-testid=prod-banner]');
  assert.equal(await badgeColour(page), 'rgb(16, 185, 129)', 'reload keeps the environment');
  await page.click('[data-testid=prod-banner] >> text=Switch to staging');
  await page.waitForSelector('[data-execution]');
  assert.match(page.url(), /#\/staging\/executions$/);
  await page.context().close();
});

await step('every production screen: banner, no enabled edit control; staging screens are editable', async () => {
  const page = await newPage();
  for (const screen of SCREENS) {
    await page.goto(url('production', screen));
    await waitReady(page);
    await expand(page, screen).catch(() => {});
    assert.ok(await page.isVisible('[data-testid=prod-banner]'), `banner on production ${screen}`);
    assert.deepEqual(await enabledEditControls(page), [], `enabled edit controls on production ${screen}`);
    const editable = await page.$$eval('main textarea:not([disabled]), main input[type=password]:not([disabled])', (els) => els.length);
    assert.equal(editable, 0, `enabled text fields on production ${screen}`);
    await axe(page, `production ${screen}`);
    await shot(page, `production-${screen}`);
  }
  for (const screen of SCREENS) {
    await page.goto(url('staging', screen));
    await waitReady(page);
    await expand(page, screen);
    assert.ok(!(await page.isVisible('[data-testid=prod-banner]')), `no banner on staging ${screen}`);
    if (!['executions', 'sessions', 'memory'].includes(screen)) {
      assert.ok((await enabledEditControls(page)).length > 0, `staging ${screen} is editable`);
    }
    await axe(page, `staging ${screen}`);
    await shot(page, `staging-${screen}`);
  }
  await page.context().close();
});

await step('Releases: commits, file diffs, prompt side by side, resource diff; publish one, CONFLICT, publish all', async () => {
  const page = await newPage();
  await page.goto(url('staging', 'releases'));
  await page.waitForSelector('[data-item="agent:support-bot"]');
  const agent = page.locator('[data-item="agent:support-bot"]');
  assert.match(await agent.locator('[data-testid=commits]').textContent(), /#2 .*answer with the user name/);
  const mainPy = agent.locator('[data-file="main.py"]');
  const unified = await mainPy.locator('[data-testid=unified-diff]').textContent();
  assert.match(unified, /name = sys\.argv/);
  assert.ok(await mainPy.locator('tr.l-insert td.ln').count() > 0, 'line numbers on inserted lines');
  await mainPy.locator('button', { hasText: 'Side by side' }).click();
  assert.match(await mainPy.locator('[data-testid=split-diff]').textContent(), /print\(f"hello \{name\}"\)/);
  await mainPy.locator('summary').first().click();
  assert.equal(await mainPy.evaluate((e) => e.open), false, 'a file diff collapses');
  await mainPy.locator('summary').first().click();
  const prompt = page.locator('[data-item="prompt:greeting"]');
  assert.match(await prompt.locator('[data-testid=prompt-diff]').textContent(), /welcome to/);
  assert.ok(await prompt.locator('mark.w-new').count() > 0, 'word highlights');
  assert.match(await prompt.textContent(), /\+product/);
  assert.match(await prompt.textContent(), /temperature/);
  const connector = page.locator('[data-item="connector:crm"]');
  const resources = await connector.locator('[data-testid=resource-diff]').textContent();
  assert.match(resources, /\/v2\/tickets/);
  assert.match(resources, /users/);
  await shot(page, 'releases-diff');

  // Publish one item, after a confirmation naming it with its plan.
  await prompt.locator('[data-testid=publish-one]').click();
  await page.waitForSelector('[data-testid=plan-items]');
  assert.match(await page.textContent('[data-testid=confirm]'), /prompt:greeting/);
  await shot(page, 'releases-confirm');
  await page.click('[data-testid=confirm-publish]');
  await page.waitForSelector('[data-testid=published]');
  await page.waitForFunction(() => !document.querySelector('[data-item="prompt:greeting"]'));
  const live = await gql('{ prompt(environment: PRODUCTION, slug: "greeting") { resolved { template } } }');
  assert.equal(live.prompt.resolved.template, 'Hello {{name}}, welcome to {{product}}!');

  // CONFLICT: staging changes after the page loaded; nothing is published, the diff refreshes.
  await setResource('tickets', { path: '/v3/tickets' });
  await page.click('[data-testid=publish-all]');
  await page.waitForSelector('[data-testid=conflict]');
  await page.waitForFunction(() => document.querySelector('[data-item="connector:crm"]')?.textContent.includes('/v3/tickets'));
  const stillOld = await gql('{ agent(environment: PRODUCTION, slug: "support-bot") { currentCommit { number } } }');
  assert.equal(stillOld.agent.currentCommit.number, 1, 'nothing was published on CONFLICT');
  await shot(page, 'releases-conflict');

  await page.click('[data-testid=publish-all]');
  await page.waitForSelector('[data-testid=plan-items]');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'h-confirm', 'focus moves to the confirmation');
  await page.fill('#release-note', 'second launch');
  await page.click('[data-testid=confirm-publish]');
  await page.waitForSelector('[data-testid=nothing-pending]');
  await page.waitForSelector('[data-release="3"]');
  const now = await gql('{ agent(environment: PRODUCTION, slug: "support-bot") { currentCommit { number } } connector(environment: PRODUCTION, slug: "crm") { resources { key config } } triggers(environment: PRODUCTION) { nodes { name } } }');
  assert.equal(now.agent.currentCommit.number, 2);
  assert.deepEqual(now.connector.resources.map((r) => r.key).sort(), ['tickets', 'users']);
  assert.deepEqual(now.triggers.nodes.map((t) => t.name), ['nightly']);
  // Production's screens show the new state.
  await page.goto(url('production', 'agents'));
  await page.waitForSelector('main .rows');
  assert.match(await page.textContent('main'), /commit #2/);
  await page.goto(url('production', 'releases'));
  await page.waitForSelector('[data-release="3"]');
  await page.locator('[data-release="3"] > details > summary').click();
  assert.match(await page.textContent('[data-release="3"]'), /second launch/);
  assert.match(await page.textContent('[data-release="3"]'), /trigger:nightly/);
  await shot(page, 'production-releases-history');

  // Roll back one chosen item of release #3 (the trigger), from the staging view.
  await page.goto(url('staging', 'releases'));
  await page.waitForSelector('[data-release="3"]');
  await page.locator('[data-release="3"] > details > summary').click();
  await page.locator('[data-release="3"] li', { hasText: 'trigger:nightly' }).locator('input[type=checkbox]').check();
  await page.locator('[data-release="3"] button', { hasText: 'Roll back 1 chosen item' }).click();
  await page.waitForSelector('[data-testid=plan-items]');
  assert.match(await page.textContent('[data-testid=confirm]'), /Roll back release #3/);
  await page.click('[data-testid=confirm-publish]');
  await page.waitForSelector('[data-release="4"]');
  const after = await gql('{ triggers(environment: PRODUCTION) { nodes { name } } agent(environment: PRODUCTION, slug: "support-bot") { currentCommit { number } } }');
  assert.deepEqual(after.triggers.nodes, [], 'the chosen item was rolled back');
  assert.equal(after.agent.currentCommit.number, 2, 'the others stay');
  await page.context().close();
});

let liveExecution = null;
await step('a new execution appears live without reload, also after a dropped connection; production shows none', async () => {
  const page = await newPage();
  await page.goto(url('staging', 'executions'));
  await page.waitForSelector('[data-execution]');
  await page.waitForSelector('.live-live');
  const gqlIdOfNewest = async () => (await gql('{ executions(environment: STAGING, first: 1) { nodes { id } } }')).executions.nodes[0].id;

  const ingestedAt = Date.now();
  const first = await rt('POST', '/executions', { agent: 'support-bot', input: { question: 'live?' } });
  const firstId = await gqlIdOfNewest();
  // Measured and printed (the issue's "within one second"); asserted only with a generous bound,
  // since CI machines are shared and noisy.
  await page.waitForSelector(`[data-execution="${firstId}"]`, { timeout: 10000 });
  console.log(`     live execution shown ${Date.now() - ingestedAt} ms after ingestion`);

  // Drop the WebSocket; while it reconnects, another execution starts: resume by cursor delivers it.
  await page.evaluate(() => window.__runflowLive.drop());
  const second = await rt('POST', '/executions', { agent: 'support-bot', input: { question: 'after reconnect' } });
  const secondId = await gqlIdOfNewest();
  await page.waitForSelector(`[data-execution="${secondId}"]`, { timeout: 10000 });
  await rt('POST', `/executions/${first.id}/finish`, { status: 'SUCCEEDED', output: { answer: 'yes' } });
  await page.waitForSelector(`[data-execution="${firstId}"] .s-succeeded`, { timeout: 10000 });
  liveExecution = { runtimeId: second.id, id: secondId };

  const other = await newPage();
  await other.goto(url('production', 'executions'));
  await other.waitForSelector('main .rows');
  assert.equal(await other.locator(`[data-execution="${firstId}"], [data-execution="${secondId}"]`).count(), 0);
  // A production execution shows in production only.
  await rt('POST', '/executions', { agent: 'support-bot', input: { question: 'prod' } }, RT_PRODUCTION);
  await other.waitForSelector('[data-execution]', { timeout: 10000 });
  assert.equal(await page.locator('[data-execution]').count() >= 22, true);
  await other.context().close();
  await page.context().close();
});

await step('execution detail: input, output, log and a live trace waterfall nested by parent', async () => {
  assert.ok(liveExecution, 'needs the live execution');
  const page = await newPage();
  await page.goto(url('staging', 'executions', liveExecution.id));
  await page.waitForSelector('h1');
  assert.match(await page.textContent('main'), /after reconnect/);
  const t = Date.parse('2026-11-29T10:00:00Z');
  const at = (ms) => new Date(t + ms).toISOString();
  const rootId = '00000000-0000-4000-8000-000000000001';
  await rt('POST', `/executions/${liveExecution.runtimeId}/spans`, { spans: [
    { id: rootId, name: 'handle request', kind: 'CUSTOM', startTime: at(0), endTime: at(1200) },
    { id: '00000000-0000-4000-8000-000000000002', parentId: rootId, name: 'retrieve', kind: 'TOOL', startTime: at(50), endTime: at(300), attributes: { index: 'handbook' } },
    { id: '00000000-0000-4000-8000-000000000003', parentId: rootId, name: 'llm answer', kind: 'LLM', startTime: at(320), endTime: at(1150), inputTokens: 812, outputTokens: 96, attributes: { model: 'gpt-4o' } },
  ] });
  await page.waitForSelector('[data-span="llm answer"]', { timeout: 10000 });
  await rt('POST', `/executions/${liveExecution.runtimeId}/spans`, { spans: [
    { id: '00000000-0000-4000-8000-000000000004', parentId: '00000000-0000-4000-8000-000000000003', name: 'stream tokens', kind: 'LLM', startTime: at(700), endTime: at(1100) },
  ] });
  await page.waitForSelector('[data-span="stream tokens"]', { timeout: 10000 });
  const names = await page.$$eval('[data-testid=waterfall] [data-span]', (els) => els.map((e) => e.dataset.span));
  assert.deepEqual(names, ['handle request', 'retrieve', 'llm answer', 'stream tokens'], 'ordered and nested by parent');
  const indent = await page.$$eval('[data-testid=waterfall] .span-name', (els) => els.map((e) => parseInt(e.style.paddingLeft, 10)));
  assert.deepEqual(indent, [0, 12, 12, 24]);
  await page.locator('[data-span="llm answer"] > summary').click();
  assert.match(await page.textContent('[data-span="llm answer"]'), /812 in \/ 96 out tokens/);
  assert.match(await page.textContent('[data-span="llm answer"]'), /gpt-4o/);
  await rt('POST', `/executions/${liveExecution.runtimeId}/finish`, { status: 'SUCCEEDED', output: { answer: 'refunds take 30 days' } });
  await page.waitForFunction(() => document.querySelector('main').textContent.includes('refunds take 30 days'), null, { timeout: 10000 });
  await axe(page, 'execution detail');
  await shot(page, 'trace-waterfall');
  await page.context().close();
});

await step('sessions: messages appear live', async () => {
  const page = await newPage();
  const sessions = await gql('{ sessions(environment: STAGING, first: 1) { nodes { id } } }');
  await page.goto(url('staging', 'sessions', sessions.sessions.nodes[0].id));
  await page.waitForSelector('.messages .msg');
  await page.waitForSelector('#h-session .live-live');
  await rt('POST', `/sessions/${chat.id}/messages`, { role: 'user', content: 'And for digital goods?' });
  await page.waitForFunction(() => document.querySelector('.messages').textContent.includes('digital goods'), null, { timeout: 10000 });
  await shot(page, 'staging-session');
  await page.context().close();
});

await step('editing in staging sends expectedRevision; a CONFLICT offers a reload', async () => {
  const page = await newPage();
  await page.goto(url('staging', 'prompts'));
  await page.locator('main .rows button.linklike').first().click();
  await page.waitForSelector('#p-template');
  await page.fill('#p-template', 'Hi {{name}} from {{team}}');
  await page.fill('#pv-name', 'Ada');
  assert.match(await page.textContent('[data-testid=prompt-preview]'), /Hi Ada from \{\{team\}\}/);
  await saveDraft('Changed elsewhere {{name}}', { model: 'gpt-4o' });
  await page.click('text=Save draft');
  await page.waitForSelector('[data-testid=conflict-latest]');
  assert.match(await page.textContent('[data-testid=conflict-latest]'), /Changed elsewhere/, 'the conflict shows what changed');
  await shot(page, 'staging-prompt-conflict');
  await page.click('[data-testid=conflict] button');
  await page.waitForFunction(() => document.querySelector('#p-template').value.includes('Changed elsewhere'));
  await page.fill('#p-template', 'Hi {{name}} from {{team}}');
  await page.click('text=Save draft');
  await page.waitForSelector('text=Draft saved.');
  const saved = await gql('{ prompt(environment: STAGING, slug: "greeting") { draft { template } } }');
  assert.equal(saved.prompt.draft.template, 'Hi {{name}} from {{team}}');
  await shot(page, 'staging-prompt-editor');
  await page.context().close();
});

await step('staging edits in the UI: credentials (write-only secret), a webhook trigger, a connector resource', async () => {
  const page = await newPage();
  page.on('dialog', (dialog) => dialog.accept());
  const secret = 'sk-live-abcdefghij0987';
  await page.goto(url('staging', 'shared'));
  await waitReady(page);
  await page.fill('#cr-name', 'billing-key');
  await page.fill('#cr-secret', secret);
  await page.click('text=Create credential');
  await page.waitForSelector('li.cred:has-text("billing-key")');
  assert.equal(await page.inputValue('#cr-secret'), '', 'the secret field is cleared');
  assert.ok(!(await page.content()).includes(secret), 'the secret is never displayed');
  assert.match(await page.textContent('li.cred:has-text("billing-key")'), /0987/);
  await page.fill('#rot-billing-key', 'sk-live-rotated-5555');
  await page.locator('li.cred:has-text("billing-key") button', { hasText: 'Rotate' }).click();
  await page.waitForFunction(() => document.querySelector('main').textContent.includes('rotated by'));
  assert.match(await page.textContent('li.cred:has-text("billing-key")'), /5555/);
  await page.locator('li.cred:has-text("billing-key") button', { hasText: 'Delete' }).click();
  await page.waitForFunction(() => !document.querySelector('main').textContent.includes('billing-key'));
  await page.fill('[id="sc-KnowledgeBase-handbook"]', '{"dimensions": 3072}');
  await page.click('text=Save config of handbook');
  await page.waitForFunction(() => document.querySelector('[id="sc-KnowledgeBase-handbook"]').value.includes('3072'));
  for (let i = 0; ; i++) {
    const kb = await gql('{ knowledgeBases(environment: STAGING, first: 10) { nodes { name config } } }');
    if (kb.knowledgeBases.nodes.find((k) => k.name === 'handbook')?.config.dimensions === 3072) break;
    assert.ok(i < 50, 'the knowledge base config was saved');
    await new Promise((r) => setTimeout(r, 100));
  }

  await page.goto(url('staging', 'triggers'));
  await waitReady(page);
  await page.fill('#nt-name', 'inbound');
  await page.selectOption('#nt-agent', 'support-bot');
  await page.fill('#nt-secret', 'a-webhook-secret-of-32-characters');
  await page.click('text=Create trigger');
  const card = page.locator('article[aria-label="Trigger inbound"]');
  await card.waitFor();
  assert.match(await card.textContent(), /X-Runflow-Signature: sha256=/);
  assert.match(await card.textContent(), /\/triggers\/inbound/);
  await card.locator('input[type=checkbox]').click(); // the list then reloads with the saved state
  for (let i = 0; i < 50; i++) {
    const t = await gql('{ trigger(environment: STAGING, name: "inbound") { enabled } }');
    if (t.trigger.enabled === false) break;
    assert.ok(i < 49, 'the trigger was disabled');
    await new Promise((r) => setTimeout(r, 100));
  }
  await shot(page, 'staging-triggers-webhook');
  await page.fill('[id="ts-nightly"]', '0 4 * * *');
  await page.locator('article[aria-label="Trigger nightly"] button', { hasText: 'Save schedule' }).click();
  for (let i = 0; ; i++) {
    const t = await gql('{ trigger(environment: STAGING, name: "nightly") { schedule } }');
    if (t.trigger.schedule === '0 4 * * *') break;
    assert.ok(i < 50, 'the schedule was saved');
    await new Promise((r) => setTimeout(r, 100));
  }

  await page.goto(url('staging', 'connectors'));
  await waitReady(page);
  await page.fill('[id="cr-crm-users"]', '{"path": "/v4/users"}');
  assert.match(await page.inputValue('[id="cr-crm-users"]'), /v4/);
  await page.click('text=Save resource users');
  for (let i = 0; ; i++) {
    const c = await gql('{ connector(environment: STAGING, slug: "crm") { resources { key config } } }');
    if (c.connector.resources.find((r) => r.key === 'users')?.config.path === '/v4/users') break;
    assert.ok(i < 50, 'the resource was saved');
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.context().close();
});

await step('a viewer sees no publish or edit controls, and who can publish', async () => {
  const page = await newPage({ token: VIEWER });
  for (const screen of SCREENS) {
    await page.goto(url('staging', screen));
    await waitReady(page);
    await expand(page, screen).catch(() => {});
    assert.deepEqual(await enabledEditControls(page), [], `viewer on staging ${screen}`);
  }
  await page.goto(url('staging', 'releases'));
  await page.waitForSelector('[data-testid=who-can-publish]');
  assert.equal(await page.locator('[data-testid=publish-one], [data-testid=publish-all]').count(), 0);
  await page.waitForSelector('[data-testid=viewer][data-ready]');
  assert.match(await page.textContent('[data-testid=viewer]'), /viewer/);
  await page.context().close();
});

await step('phone 390x844: no horizontal scroll on any screen, navigation reachable', async () => {
  await saveDraft('Hello {{name}}, see you at {{product}}!', { model: 'gpt-4o', temperature: 0.7 });
  const page = await newPage({ width: 390, height: 844 });
  for (const env of ['staging', 'production']) {
    for (const screen of SCREENS) {
      await page.goto(url(env, screen));
      await waitReady(page);
      await expand(page, screen).catch(() => {});
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `${env} ${screen} scrolls horizontally by ${overflow}px`);
      for (const link of await page.$$('nav a')) assert.ok(await link.isVisible(), 'every screen link is visible');
    }
  }
  await page.goto(url('staging', 'releases'));
  await page.waitForSelector('[data-item]');
  await shot(page, 'phone-releases');
  await page.goto(url('production', 'executions'));
  await waitReady(page);
  await shot(page, 'phone-production-executions');
  await page.context().close();
});

await step('governance: a developer\'s release request appears live and is approved; a schedule is made and cancelled; the audit log shows them', async () => {
  const DEV = mint('--role', 'developer', '--ttl', '2h', '--subject', 'dana');
  await deploy('governance change', [{ path: 'main.py', content: 'print("governed")\n' }]);
  const pending = (await gql('{ pendingChanges(environment: STAGING) { key fingerprint } }')).pendingChanges;
  const items = pending.map((p) => ({ key: p.key, fingerprint: p.fingerprint }));
  const page = await newPage();
  await page.goto(url('staging', 'releases'));
  await page.waitForSelector('[data-testid=release-requests] .empty');
  await gql('mutation($i: RequestReleaseInput!) { requestRelease(environment: STAGING, input: $i) { id } }', { i: { items, note: 'please ship' } }, DEV);
  await page.waitForSelector('[data-request-state=OPEN] [data-testid=approve-request]');
  await page.click('[data-request-state=OPEN] [data-testid=approve-request]');
  await page.waitForSelector('[data-request-state=APPROVED]');
  assert.match(await page.textContent('[data-request-state=APPROVED]'), /Approved by/);
  const tomorrow = new Date(Date.now() + 86400000);
  const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await page.fill('[data-testid=schedule-at]', local);
  await page.click('[data-testid=schedule-release]');
  await page.waitForSelector('[data-schedule-state=SCHEDULED] [data-testid=cancel-scheduled]');
  await shot(page, 'releases-governance');
  await page.click('[data-schedule-state=SCHEDULED] [data-testid=cancel-scheduled]');
  await page.waitForSelector('[data-schedule-state=CANCELLED]');
  // The publish dialog's "Publish at": publishing later schedules the release (nothing now).
  await page.click('[data-testid=publish-all]');
  await page.waitForSelector('[data-testid=plan-items]');
  await page.fill('[data-testid=publish-at]', local);
  assert.match(await page.textContent('[data-testid=confirm-publish]'), /Schedule/);
  await page.click('[data-testid=confirm-publish]');
  await page.waitForSelector('[data-testid=published]');
  assert.match(await page.textContent('[data-testid=published]'), /Scheduled for/);
  await page.waitForSelector('[data-schedule-state=SCHEDULED] [data-testid=cancel-scheduled]');
  const still = (await gql('{ pendingChanges(environment: STAGING) { key } }')).pendingChanges;
  assert.equal(still.length, pending.length, 'nothing was published now');
  await page.click('[data-schedule-state=SCHEDULED] [data-testid=cancel-scheduled]');
  await page.waitForFunction(() => !document.querySelector('[data-schedule-state=SCHEDULED]'));
  await page.goto(url('staging', 'audit'));
  await page.waitForSelector('[data-testid=audit-table] tr[data-action=cancelScheduledRelease]');
  const change = await page.textContent('[data-testid=audit-table] tr[data-action=cancelScheduledRelease] [data-testid=audit-change]');
  assert.match(change, /state scheduled → cancelled/, 'the audit log shows before → after');
  const actions = await page.$$eval('[data-testid=audit-table] tr[data-action]', (rows) => rows.map((r) => r.dataset.action));
  for (const action of ['requestRelease', 'approveReleaseRequest', 'cancelScheduledRelease', 'deployAgent']) {
    assert.ok(actions.includes(action), `${action} in ${actions}`);
  }
  await shot(page, 'audit-log');
  // Scheduling is `publish` with `at`, against production: audited there, as a scheduled release.
  await page.goto(url('production', 'audit'));
  await page.waitForSelector('[data-testid=audit-table] tr[data-action=publish][data-record=ScheduledRelease]');
  assert.equal((await page.$$('[data-testid=audit-table] tr[data-action=publish][data-record=ScheduledRelease]')).length, 2, 'both schedules (governance actions and the publish dialog)');
  await page.context().close();
});

await step('keyboard: Tab reaches the badge with a visible focus ring', async () => {
  const page = await newPage();
  await page.goto(url('staging', 'executions'));
  await page.waitForSelector('[data-execution]');
  let found = false;
  for (let i = 0; i < 6 && !found; i++) {
    await page.keyboard.press('Tab');
    found = await page.evaluate(() => document.activeElement?.dataset?.testid === 'env-badge');
  }
  assert.ok(found, 'the badge is reachable by Tab');
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=prod-banner]');
  await page.context().close();
});

await step('assets: content types, ETag revalidation, CSP; GraphiQL from embedded assets only', async () => {
  const index = await fetch(`${BASE}/`);
  assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
  const csp = index.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.ok(!csp.includes('unsafe-inline') && !csp.includes('http'), csp);
  const js = await fetch(`${BASE}/assets/app.js`);
  assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  assert.equal(js.headers.get('cache-control'), 'no-cache');
  const again = await fetch(`${BASE}/assets/app.js`, { headers: { 'if-none-match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${BASE}/assets/nope.js`)).status, 404);
  const page = await newPage();
  await page.goto(`${BASE}/graphql`);
  await page.waitForSelector('.graphiql-container', { timeout: 10000 });
  await page.waitForTimeout(500);
  await shot(page, 'graphiql');
  await page.context().close();
});

await browser.close();
if (cspViolations.length) failures.push(`CSP violations: ${[...new Set(cspViolations)].join(' | ')}`);
if (foreignRequests.length) failures.push(`requests to other origins: ${[...new Set(foreignRequests)].join(', ')}`);
stopServer();
if (failures.length) {
  console.log(`\n${failures.length} failure(s):\n- ${failures.join('\n- ')}`);
  console.log(`test result: FAILED. ${steps - failures.length} passed; ${failures.length} failed (dashboard browser checks)`);
  process.exit(1);
}
console.log(`test result: ok. ${steps} passed; 0 failed (dashboard browser checks)`);
console.log(`\nall dashboard browser checks passed; first screen interactive: median ${results.firstScreen.median} ms, max ${results.firstScreen.max} ms`);
