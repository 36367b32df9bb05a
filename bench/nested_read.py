"""Benchmark: a nested read (50 executions, each with its agent and its spans), Runflow against
PostGraphile 4 on the same PostgreSQL data, and Runflow on SQLite on the same data shape.

Seeds through Runflow's own API (3 agents, --executions STAGING executions of 10 spans each),
declares the foreign keys PostGraphile needs (executions.agent_id -> agents, spans.execution_id
-> executions) on that database, starts PostGraphile (one worker per core), then alternates wrk
runs of both sides (--repeat rounds of --seconds each, per concurrency) and prints the medians
and the ratio. `--no-analyze` disables autovacuum and drops planner statistics (a fresh
database). Only 127.0.0.1.

Usage: cargo build --release && (cd bench/postgraphile && npm ci) &&
       python3 bench/nested_read.py [--postgres postgres://postgres@127.0.0.1:5432/test]
       [--executions 5000] [--seconds 20] [--repeat 3] [--concurrency 16,64] [--sqlite] [--no-analyze]
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import time
import urllib.request

from common import HERE, Server, alternate, create_database, drop_database, free_port, report, wrk

RUNFLOW_QUERY = """{ executions(environment: STAGING, first: 50) { nodes { id status createdAt
  agent { slug name } spans(first: 10) { nodes { id name kind startedAt } } } } }"""
PEER_QUERY = """{ allExecutions(first: 50, orderBy: ID_DESC, condition: {tenantId: "bench", environment: "staging"}) {
  nodes { id status createdAt agentByAgentId { slug name }
  spansByExecutionId(first: 10, orderBy: ID_ASC) { nodes { id name kind startedAt } } } } }"""
DEPLOY = "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { number } } }"


def seed(server, executions, spans_per_execution=10):
    developer = server.token("bench", "developer")
    for n in range(3):
        slug = f"agent-{n}"
        files = [
            {"path": "runflow.toml", "content": f'name = "{slug}"\nentrypoint = ["python3", "main.py"]\n'},
            {"path": "main.py", "content": "print('hi')\n"},
        ]
        server.gql(developer, DEPLOY, {"input": {"slug": slug, "message": "v1", "files": files}})
    runtime = server.runtime_token("bench", "staging")

    def one(i):
        row = server.runtime(runtime, "/executions", {"agent": f"agent-{i % 3}", "input": {"question": f"q{i}", "n": i}})
        spans = [{"name": f"step-{k}", "kind": "LLM" if k % 2 else "TOOL", "startTime": "2026-11-29T10:00:00Z",
                  "endTime": "2026-11-29T10:00:01Z", "inputTokens": 100 + k, "outputTokens": 20,
                  "attributes": {"model": "m", "k": k}} for k in range(spans_per_execution)]
        server.runtime(runtime, f"/executions/{row['id']}/spans", {"spans": spans})
        server.runtime(runtime, f"/executions/{row['id']}/finish", {"status": "SUCCEEDED", "output": {"answer": "a" * 200}})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(executions)))
    return developer


def declare_foreign_keys(url):
    # Idempotent: PostGraphile derives relations from foreign keys only.
    sql = """
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'bench_fk_executions_agent') THEN
        ALTER TABLE executions ADD CONSTRAINT bench_fk_executions_agent FOREIGN KEY (agent_id) REFERENCES agents (id);
      END IF;
      IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'bench_fk_spans_execution') THEN
        ALTER TABLE spans ADD CONSTRAINT bench_fk_spans_execution FOREIGN KEY (execution_id) REFERENCES executions (id);
      END IF;
    END $$;"""
    subprocess.run(["psql", url, "-qc", sql], check=True)


class PostGraphile:
    def __init__(self, url, workers):
        directory = os.path.join(HERE, "postgraphile")
        if not os.path.isdir(os.path.join(directory, "node_modules")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory, check=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        env = dict(os.environ, DATABASE_URL=url, PORT=str(self.port), WORKERS=str(workers))
        self.process = subprocess.Popen(["node", "server.js"], cwd=directory, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        body = json.dumps({"query": PEER_QUERY}).encode()
        for _ in range(300):
            try:
                request = urllib.request.Request(self.url, data=body, method="POST")
                request.add_header("content-type", "application/json")
                with urllib.request.urlopen(request, timeout=5) as response:
                    result = json.loads(response.read())
                if result.get("errors"):
                    raise SystemExit("PostGraphile: " + json.dumps(result["errors"])[:500])
                self.sample = result["data"]
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("PostGraphile did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def check_same_shape(ours, peer):
    nodes, peer_nodes = ours["executions"]["nodes"], peer["allExecutions"]["nodes"]
    assert len(nodes) == len(peer_nodes) == 50, (len(nodes), len(peer_nodes))
    assert all(len(n["spans"]["nodes"]) == 10 for n in nodes)
    assert all(len(n["spansByExecutionId"]["nodes"]) == 10 for n in peer_nodes)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--executions", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", default="16,64")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--sqlite", action="store_true", help="also run Runflow on SQLite with the same data shape")
    parser.add_argument("--no-analyze", action="store_true", help="autovacuum off, no planner statistics")
    args = parser.parse_args()
    url = create_database(args.postgres)
    servers, peer = [], None
    try:
        # autovacuum is a server setting (no database can turn it off); per table it is the
        # storage parameter set below, once the server's migrations made the tables.
        server = Server(database_url=url)
        servers.append(server)
        if args.no_analyze:
            for table in ("executions", "spans", "agents", "agent_deployments", "traces"):
                subprocess.run(["psql", url, "-qc", f"ALTER TABLE {table} SET (autovacuum_enabled = false)"], check=True)
        start = time.perf_counter()
        token = seed(server, args.executions)
        print(f"seeded 3 agents, {args.executions} executions x 10 spans through the API in {time.perf_counter() - start:.0f}s")
        declare_foreign_keys(url)
        if args.no_analyze:
            subprocess.run(["psql", url, "-qc",
                            "SELECT count(*) FROM pg_stats WHERE tablename IN ('executions','spans')"], check=True)
        else:
            subprocess.run(["psql", url, "-qc", "ANALYZE"], check=True)
        peer = PostGraphile(url, args.workers)
        check_same_shape(server.gql(token, RUNFLOW_QUERY), peer.sample)
        sides = {"runflow (postgres)": (server.url + "/graphql", RUNFLOW_QUERY, {"Authorization": "Bearer " + token}),
                 f"postgraphile ({args.workers} workers)": (peer.url, PEER_QUERY, {})}
        if args.sqlite:
            lite = Server()
            servers.append(lite)
            lite_token = seed(lite, args.executions)
            sides["runflow (sqlite)"] = (lite.url + "/graphql", RUNFLOW_QUERY, {"Authorization": "Bearer " + lite_token})
        for c in [int(x) for x in args.concurrency.split(",")]:
            samples = alternate(list(sides), args.repeat, lambda side: wrk(
                sides[side][0], json.dumps({"query": sides[side][1]}), sides[side][2], connections=c, seconds=args.seconds))
            names = list(sides)
            report(f"nested read, c={c}{' (no planner statistics)' if args.no_analyze else ''}", samples, names[0], names[1])
            if args.sqlite:
                print(f"   ratio runflow sqlite / runflow postgres: "
                      f"{report_ratio(samples, names[2], names[0]):.2f}")
    finally:
        if peer:
            peer.stop()
        for server in servers:
            server.stop()
        drop_database(args.postgres, url)


def report_ratio(samples, a, b):
    from common import median
    return median([r["rps"] for r in samples[a]]) / median([r["rps"] for r in samples[b]])


if __name__ == "__main__":
    main()
