"""Benchmark: the Releases screen's data for a tenant with 200 agents of 100 files each.

Seeds 200 agents (100 files of ~1 KiB each), publishes them all, deploys a second version of
every agent (5 files changed), then times `pendingChanges` over HTTP:
  - the list (id, key, kind, change, fingerprint), and
  - the full diff (commits and per-file unified diffs with hunks of all 200 agents).

Usage: cargo build --release && python3 bench/pending_changes.py [--agents 200] [--files 100]
       [--runs 20] [--postgres postgres://postgres@127.0.0.1:5432/test]
"""

import argparse
import subprocess
import time
import uuid

from common import Server, percentile

DEPLOY = "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { number } } }"
LIST = "{ pendingChanges(environment: STAGING) { id key kind change fingerprint } }"
FULL = """{ pendingChanges(environment: STAGING) { id key change fingerprint agent { commits { number message }
  files { path change unifiedDiff hunks { oldStart newStart lines { tag text } } } } } }"""


def bundle(slug, files, version):
    content = [{"path": "runflow.toml", "content": f'name = "{slug}"\nentrypoint = ["python3", "main.py"]\n'}]
    for i in range(files - 1):
        changed = version > 1 and i % 20 == 0  # 5 of 100 files change in version 2
        lines = [f"# {slug} file {i} line {n} {'v2' if changed and n == 7 else ''}" for n in range(24)]
        content.append({"path": f"src/module_{i:03}.py", "content": "\n".join(lines) + "\n"})
    return content


def create_database(admin_url):
    name = "rf_bench_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    return name


def timed(server, token, query, runs):
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        data = server.gql(token, query)
        samples.append((time.perf_counter() - start) * 1000)
    return data, samples


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()
    database = create_database(args.postgres) if args.postgres else None
    server = Server(database_url=database and args.postgres.rsplit("/", 1)[0] + "/" + database)
    try:
        developer, publisher = server.token("bench", "developer"), server.token("bench", "publisher")
        start = time.perf_counter()
        for n in range(args.agents):
            slug = f"agent-{n:03}"
            server.gql(developer, DEPLOY, {"input": {"slug": slug, "message": "v1", "files": bundle(slug, args.files, 1)}})
        plan = server.gql(publisher, 'query { publishPlan(environment: PRODUCTION, input: {all: true}) { fingerprint } }')
        server.gql(publisher, "mutation($f: String!) { publish(environment: PRODUCTION, input: {all: true, fingerprint: $f}) { release { number } } }",
                   {"f": plan["publishPlan"]["fingerprint"]})
        for n in range(args.agents):
            slug = f"agent-{n:03}"
            server.gql(developer, DEPLOY, {"input": {"slug": slug, "message": "v2", "files": bundle(slug, args.files, 2)}})
        seeded = time.perf_counter() - start
        data, list_ms = timed(server, developer, LIST, args.runs)
        assert len(data["pendingChanges"]) == args.agents, len(data["pendingChanges"])
        data, full_ms = timed(server, developer, FULL, max(3, args.runs // 4))
        files = sum(len(c["agent"]["files"]) for c in data["pendingChanges"])
        assert files == args.agents * 5, files
        backend = "postgres" if args.postgres else "sqlite"
        print(f"seeded {args.agents} agents x {args.files} files, published, redeployed: {seeded:.1f}s ({backend})")
        print(f"pendingChanges list ({args.agents} items):       p50 {percentile(list_ms, 50):7.1f} ms   p95 {percentile(list_ms, 95):7.1f} ms")
        print(f"pendingChanges + commits + {files} file diffs: p50 {percentile(full_ms, 50):7.1f} ms   p95 {percentile(full_ms, 95):7.1f} ms")
    finally:
        server.stop()
        if database:
            subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE {database} WITH (FORCE)"], check=False)


if __name__ == "__main__":
    main()
