"""Benchmark: span ingestion through the runtime API (batches of 1,000 spans) against raw
baselines on the same database and table shape, PostgreSQL and SQLite.

- Runflow: wrk POSTs a 1,000-span batch to `/v1/runtime/executions/{id}/spans`, spread over
  200 executions, with --clients connections (spans/s = requests/s x 1,000).
- PostgreSQL baseline: --clients `psql` processes each sending `COPY ... FROM STDIN` of 1,000
  rows per statement (its own transaction) into a copy of the `spans` table with its indexes.
- SQLite baseline: Python's sqlite3 `executemany` of 1,000 rows per transaction into a copy of
  the `spans` table, WAL and synchronous=FULL like Runflow's own settings (one client).

Rows are copies of the spans Runflow stored, with fresh ids. Alternates both sides --repeat
times and prints medians and the ratio. Only 127.0.0.1.

Usage: cargo build --release && python3 bench/ingest.py [--postgres URL] [--clients 1,4]
       [--seconds 10] [--repeat 3] [--backend postgres,sqlite]
"""

import argparse
import json
import os
import sqlite3
import subprocess
import threading
import time
import uuid

from common import Server, alternate, create_database, drop_database, median, report, wrk

BATCH = 1000


def span(k):
    return {"name": f"step-{k}", "kind": "LLM", "startTime": "2026-11-29T10:00:00Z", "endTime": "2026-11-29T10:00:01Z",
            "inputTokens": 120, "outputTokens": 40, "attributes": {"model": "gpt-4o", "k": k}}


def prepare(server):
    developer = server.token("bench", "developer")
    files = [{"path": "runflow.toml", "content": 'name = "ingest"\nentrypoint = ["python3", "main.py"]\n'},
             {"path": "main.py", "content": "print('hi')\n"}]
    server.gql(developer, "mutation($input: DeployAgentInput!) { deployAgent(environment: STAGING, input: $input) { commit { number } } }",
               {"input": {"slug": "ingest", "message": "v1", "files": files}})
    runtime = server.runtime_token("bench", "staging")
    executions = [server.runtime(runtime, "/executions", {"agent": "ingest", "input": {}})["id"] for _ in range(200)]
    body = json.dumps({"spans": [span(k) for k in range(BATCH)]})
    server.runtime(runtime, f"/executions/{executions[0]}/spans", json.loads(body))  # template rows
    return runtime, executions, body


def run_runflow(server, runtime, executions, body, clients, seconds):
    result = wrk(server.url + "/v1/runtime/executions/x/spans", body, {"Authorization": "Bearer " + runtime},
                 connections=clients, threads=min(clients, 2), seconds=seconds,
                 paths=[f"/v1/runtime/executions/{e}/spans" for e in executions])
    result["rows"] = result["rps"] * BATCH
    return result


def new_id():
    return str(uuid.UUID(int=(time.time_ns() << 64 | uuid.uuid4().int & ((1 << 64) - 1)) & ((1 << 128) - 1)))


# --- PostgreSQL: COPY -------------------------------------------------------------------------

def pg_prepare(url):
    subprocess.run(["psql", url, "-qc", "DROP TABLE IF EXISTS bench_raw_spans; "
                    "CREATE TABLE bench_raw_spans (LIKE spans INCLUDING ALL)"], check=True)
    rows = subprocess.run(["psql", url, "-qc", f"COPY (SELECT * FROM spans LIMIT {BATCH}) TO STDOUT"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    columns = subprocess.run(["psql", url, "-qAtc", "SELECT column_name FROM information_schema.columns "
                              "WHERE table_name = 'spans' ORDER BY ordinal_position"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert len(rows) == BATCH, len(rows)
    return rows, columns.index("id")


def pg_copy(url, template, id_column, clients, batches):
    scripts = []
    for _ in range(clients):
        parts = []
        for _ in range(batches):
            parts.append("COPY bench_raw_spans FROM STDIN;\n")
            for row in template:
                fields = row.split("\t")
                fields[id_column] = new_id()
                parts.append("\t".join(fields) + "\n")
            parts.append("\\.\n")
        scripts.append("".join(parts).encode())
    processes = []
    start = time.perf_counter()
    for script in scripts:
        p = subprocess.Popen(["psql", url, "-q", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        processes.append((p, script))
    threads = [threading.Thread(target=p.communicate, args=(s,)) for p, s in processes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    assert all(p.returncode == 0 for p, _ in processes)
    return {"rows": clients * batches * BATCH / elapsed, "rps": clients * batches / elapsed}


# --- SQLite: executemany ------------------------------------------------------------------------

def sqlite_prepare(server):
    path = os.path.join(server.dir, "runflow.db")
    source = sqlite3.connect(path)
    ddl = source.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'spans' AND sql IS NOT NULL").fetchall()
    cursor = source.execute(f"SELECT * FROM spans LIMIT {BATCH}")
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    source.close()
    target = os.path.join(server.dir, "raw.db")
    db = sqlite3.connect(target, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for (sql,) in ddl:
        db.execute(sql.replace('"spans"', '"raw_spans"').replace(" spans", " raw_spans").replace("ix_spans", "ix_raw_spans"))
    return db, rows, columns.index("id")


def sqlite_insert(db, template, id_column, seconds):
    blob = isinstance(template[0][id_column], bytes)
    placeholders = ",".join("?" * len(template[0]))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        rows = []
        for row in template:
            row = list(row)
            fresh = uuid.UUID(new_id())
            row[id_column] = fresh.bytes if blob else str(fresh)
            rows.append(row)
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO raw_spans VALUES ({placeholders})", rows)
        db.execute("COMMIT")
        count += 1
    elapsed = time.perf_counter() - start
    return {"rows": count * BATCH / elapsed, "rps": count / elapsed}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--backend", default="postgres,sqlite")
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    ratios = {}
    for backend in args.backend.split(","):
        url = create_database(args.postgres) if backend == "postgres" else None
        server = Server(database_url=url)
        try:
            runtime, executions, body = prepare(server)
            if backend == "postgres":
                template, id_column = pg_prepare(url)
                for clients in [int(x) for x in args.clients.split(",")]:
                    # The COPY side runs a fixed number of batches sized from a first probe.
                    probe = pg_copy(url, template, id_column, clients, 2)
                    batches = max(2, int(probe["rps"] * args.seconds / clients))
                    samples = alternate(["runflow runtime API", "raw COPY"], args.repeat, lambda side: (
                        run_runflow(server, runtime, executions, body, clients, args.seconds) if side == "runflow runtime API"
                        else pg_copy(url, template, id_column, clients, batches)))
                    ratios[(backend, clients)] = report(f"span ingestion, PostgreSQL, {clients} client(s), batches of {BATCH}",
                                                        samples, "runflow runtime API", "raw COPY", key="rows", unit="spans/s")
            else:
                db, template, id_column = sqlite_prepare(server)
                samples = alternate(["runflow runtime API", "raw executemany"], args.repeat, lambda side: (
                    run_runflow(server, runtime, executions, body, 1, args.seconds) if side == "runflow runtime API"
                    else sqlite_insert(db, template, id_column, args.seconds)))
                ratios[(backend, 1)] = report(f"span ingestion, SQLite, 1 client, batches of {BATCH}", samples,
                                              "runflow runtime API", "raw executemany", key="rows", unit="spans/s")
        finally:
            server.stop()
            if url:
                drop_database(args.postgres, url)
    return ratios


if __name__ == "__main__":
    main()
