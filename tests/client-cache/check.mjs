// Runflow's contract under real client tooling, against a running server:
//  1. Apollo Client's normalised InMemoryCache reads one agent in PRODUCTION, STAGING and
//     PRODUCTION again, and gets each environment's own data every time (cache-first reads:
//     a shared id would make the third read return staging's commit);
//  2. it reads two releases that touch the same agent and gets each release's own items;
//  3. the schema the server serves by introspection, printed by graphql-js, equals
//     schema.graphql printed by graphql-js (types, descriptions, @specifiedBy).
// Usage: RUNFLOW_URL=http://127.0.0.1:PORT TOKEN=... RELEASE_1=<id> RELEASE_2=<id> node check.mjs
// The server must hold agent "bot" with staging on a newer commit than production, and the two
// releases (each publishing "bot"). Prints one JSON line; exits non-zero on any failure.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema } from "graphql";
import { readFileSync } from "node:fs";

const url = process.env.RUNFLOW_URL;
const fail = (message) => {
  console.error("FAIL: " + message);
  process.exit(1);
};

const client = new ApolloClient({
  link: new HttpLink({ uri: `${url}/graphql`, headers: { authorization: `Bearer ${process.env.TOKEN}` } }),
  cache: new InMemoryCache(),
});

// 1. One agent, both environments, in turn, through the cache.
const AGENT = gql`
  query Agent($env: Environment!) {
    agent(environment: $env, slug: "bot") { id environment endpointUrl currentCommit { id number } }
  }
`;
const seen = [];
for (const env of ["PRODUCTION", "STAGING", "PRODUCTION", "STAGING"]) {
  const { data } = await client.query({ query: AGENT, variables: { env }, fetchPolicy: "cache-first" });
  const agent = data.agent;
  if (agent.environment !== env) fail(`asked ${env}, the cache answered ${agent.environment}`);
  if (!agent.endpointUrl.includes(`/${env.toLowerCase()}/`)) fail(`${env} got endpoint ${agent.endpointUrl}`);
  seen.push([env, agent.currentCommit.number]);
}
const commitOf = Object.fromEntries(seen);
for (const [env, number] of seen) {
  if (number !== commitOf[env]) fail(`${env} read commit ${number}, earlier ${commitOf[env]}`);
}
if (commitOf.PRODUCTION === commitOf.STAGING) fail("the fixture must run different commits per environment");
const agentsInCache = Object.keys(client.cache.extract()).filter((key) => key.startsWith("Agent:"));
if (agentsInCache.length !== 2) fail(`expected two cached Agent objects, got ${agentsInCache}`);

// 2. Two releases touching the same agent keep their own items.
const RELEASE = gql`
  query Release($id: ID!) {
    release(environment: PRODUCTION, id: $id) { id number items { id key change after } }
  }
`;
const releases = {};
for (const id of [process.env.RELEASE_1, process.env.RELEASE_2, process.env.RELEASE_1, process.env.RELEASE_2]) {
  const { data } = await client.query({ query: RELEASE, variables: { id }, fetchPolicy: "cache-first" });
  const item = data.release.items.find((i) => i.key === "agent:bot");
  if (!item) fail(`release ${data.release.number} lost its agent item`);
  const number = item.after && item.after.number;
  if (releases[data.release.number] !== undefined && releases[data.release.number] !== number) {
    fail(`release ${data.release.number} showed commit ${number}, earlier ${releases[data.release.number]}`);
  }
  releases[data.release.number] = number;
}
const numbers = Object.values(releases);
if (numbers.length !== 2 || numbers[0] === numbers[1]) fail(`each release must keep its own item: ${JSON.stringify(releases)}`);

// 3. Introspection equals schema.graphql.
const response = await fetch(`${url}/graphql`, {
  method: "POST",
  headers: { "content-type": "application/json", authorization: `Bearer ${process.env.TOKEN}` },
  body: JSON.stringify({ query: getIntrospectionQuery({ descriptions: true, specifiedByUrl: true }) }),
});
const introspection = await response.json();
if (introspection.errors) fail(`introspection failed: ${JSON.stringify(introspection.errors)}`);
const served = printSchema(buildClientSchema(introspection.data));
const file = printSchema(buildSchema(readFileSync(new URL("../../schema.graphql", import.meta.url), "utf8")));
if (served !== file) {
  const a = served.split("\n");
  const b = file.split("\n");
  const line = a.findIndex((text, i) => text !== b[i]);
  fail(`introspection differs from schema.graphql at line ${line + 1}: ${JSON.stringify(a[line])} vs ${JSON.stringify(b[line])}`);
}
if (!served.includes('scalar DateTime @specifiedBy(url: "https://datatracker.ietf.org/doc/html/rfc3339")')) {
  fail("DateTime has no @specifiedBy in introspection");
}

console.log(JSON.stringify({ ok: true, commits: commitOf, releases, schemaLines: served.split("\n").length }));
