"""CI smoke benchmark: short versions of the nested read (against PostGraphile) and of span
ingestion (against raw COPY on PostgreSQL and raw executemany on SQLite), run side by side and
alternated; fails (exit 1) when a ratio to its peer drops below its floor.

Ratios, not absolute times: both sides run on the same machine in the same minute. The floors
sit well below the ratios measured on the reference machine (README, "Performance"), so noise
does not fail CI while a real regression (an N+1 query, a lost batch insert, a per-row round
trip) does. The binary is the one `cargo test` builds (target/debug/runflow) unless --binary or
RUNFLOW_BENCH_BINARY names another; debug and release builds have their own floors.

Plus one ratio of instruction counts, which do not move with the machine's load: callgrind
counts the instructions per `{__typename}` request of Runflow and of the bare axum handler
(bench/bare_axum.rs, same build profile), and the ratio bare / Runflow is held to its floor too
(skipped with a note when valgrind is not installed; .ci/run installs it).

Bounded: under two minutes in all (small seeds, 2-second wrk runs, 2 rounds per side, 100
requests under callgrind per side).

Usage: python3 bench/smoke.py [--postgres postgres://postgres@127.0.0.1:5432/test] [--binary PATH]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Floors per build, well below the ratios measured on the reference machine (README,
# "Performance"): debug build at load 6-7 measured 0.15-0.34 (read), 0.13-0.15 (PG ingest),
# 0.57-0.73 (SQLite ingest), 0.19 ({__typename} instructions); release build 1.04, 0.18-0.24,
# 1.03 and 0.28. Timed ratios swing by 2x with the machine's load, hence the margin.
FLOORS = {
    "debug": {"nested read / PostGraphile": 0.08, "ingest PG / COPY": 0.02, "ingest SQLite / executemany": 0.08,
              "{__typename} instructions, bare axum / runflow": 0.08},
    "release": {"nested read / PostGraphile": 0.15, "ingest PG / COPY": 0.04, "ingest SQLite / executemany": 0.15,
                "{__typename} instructions, bare axum / runflow": 0.08},
}


def instructions_per_request(command, env, url, body, headers, requests=100):
    """Instructions per request of a server started as `command` under callgrind (counted
    only around `requests` sequential POSTs over one kept-alive connection, after a warm-up)."""
    import http.client
    import subprocess
    import tempfile
    import time

    out = tempfile.mktemp(prefix="callgrind-smoke-", suffix=".out")
    process = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
                                "--instr-atstart=no", *command], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host, path = url.removeprefix("http://").split("/", 1)
    try:
        connection = None
        for _ in range(600):
            try:
                connection = http.client.HTTPConnection(host, timeout=120)
                connection.request("POST", "/" + path, body=body, headers=headers)
                connection.getresponse().read()
                break
            except OSError:
                connection = None
                time.sleep(0.2)
        if connection is None:
            raise SystemExit(f"smoke: {command[0]} did not answer under valgrind")

        def one():
            connection.request("POST", "/" + path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read()
            assert response.status == 200 and b"Query" in text, text[:300]

        for _ in range(3):
            one()
        subprocess.run(["callgrind_control", "--instr=on", str(process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(requests):
            one()
        subprocess.run(["callgrind_control", "--instr=off", str(process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        process.terminate()
        process.wait(timeout=120)
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    os.remove(out)
    return total / requests


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--binary", default=None)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    binary = args.binary or os.environ.get("RUNFLOW_BENCH_BINARY") or os.path.join(ROOT, "target", "debug", "runflow")
    os.environ["RUNFLOW_BENCH_BINARY"] = os.path.abspath(binary)
    sys.path.insert(0, HERE)
    import json
    import subprocess

    import common
    import ingest
    import nested_read

    build = "release" if "/release/" in os.path.abspath(binary) else "debug"
    floors = FLOORS[build]
    ratios = {}

    # Nested read on PostgreSQL against PostGraphile (one worker per core).
    url = common.create_database(args.postgres)
    server, peer = None, None
    try:
        server = common.Server(database_url=url)
        token = nested_read.seed(server, 60)
        nested_read.declare_foreign_keys(url)
        subprocess.run(["psql", url, "-qc", "ANALYZE"], check=True)
        peer = nested_read.PostGraphile(url, os.cpu_count())
        nested_read.check_same_shape(server.gql(token, nested_read.RUNFLOW_QUERY), peer.sample)
        sides = {"runflow": (server.url + "/graphql", nested_read.RUNFLOW_QUERY, {"Authorization": "Bearer " + token}),
                 "postgraphile": (peer.url, nested_read.PEER_QUERY, {})}
        samples = common.alternate(list(sides), args.repeat, lambda side: common.wrk(
            sides[side][0], json.dumps({"query": sides[side][1]}), sides[side][2], connections=16, seconds=args.seconds))
        ratios["nested read / PostGraphile"] = common.report("smoke: nested read, c=16", samples, "runflow", "postgraphile")
    finally:
        if peer:
            peer.stop()
        if server:
            server.stop()
        common.drop_database(args.postgres, url)

    # Span ingestion on PostgreSQL against COPY (1 client).
    url = common.create_database(args.postgres)
    server = None
    try:
        server = common.Server(database_url=url)
        runtime, executions, body = ingest.prepare(server)
        template, id_column = ingest.pg_prepare(url)
        probe = ingest.pg_copy(url, template, id_column, 1, 2)
        batches = max(2, int(probe["rps"] * args.seconds))
        samples = common.alternate(["runflow", "COPY"], args.repeat, lambda side: (
            ingest.run_runflow(server, runtime, executions, body, 1, args.seconds) if side == "runflow"
            else ingest.pg_copy(url, template, id_column, 1, batches)))
        ratios["ingest PG / COPY"] = common.report("smoke: span ingestion, PostgreSQL, 1 client", samples,
                                                   "runflow", "COPY", key="rows", unit="spans/s")
    finally:
        if server:
            server.stop()
        common.drop_database(args.postgres, url)

    # Span ingestion on SQLite against executemany (1 client).
    server = common.Server()
    try:
        runtime, executions, body = ingest.prepare(server)
        db, template, id_column = ingest.sqlite_prepare(server)
        samples = common.alternate(["runflow", "executemany"], args.repeat, lambda side: (
            ingest.run_runflow(server, runtime, executions, body, 1, args.seconds) if side == "runflow"
            else ingest.sqlite_insert(db, template, id_column, args.seconds)))
        ratios["ingest SQLite / executemany"] = common.report("smoke: span ingestion, SQLite, 1 client", samples,
                                                              "runflow", "executemany", key="rows", unit="spans/s")
    finally:
        server.stop()

    # {__typename}: instructions per request against the bare axum handler (not timed: counted).
    import shutil
    if shutil.which("valgrind") and shutil.which("callgrind_control"):
        bare = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(binary))), build, "examples", "bare_axum")
        if not os.path.exists(bare):
            subprocess.run(["cargo", "build", "-q", "--example", "bare_axum"] + (["--release"] if build == "release" else []),
                           cwd=ROOT, check=True)
        server = common.Server()
        try:
            token = server.token("bench", "viewer")
            env = server.env
        finally:
            server.stop()
        body = json.dumps({"query": "{__typename}"}).encode()
        ours = instructions_per_request([binary], env, "http://" + env["RUNFLOW_LISTEN"] + "/graphql", body,
                                        {"content-type": "application/json", "authorization": "Bearer " + token})
        port = common.free_port()
        theirs = instructions_per_request([bare], {"BARE_LISTEN": f"127.0.0.1:{port}", "PATH": os.environ.get("PATH", "")},
                                          f"http://127.0.0.1:{port}/graphql", body, {"content-type": "application/json"})
        shutil.rmtree(env["RUNFLOW_DATA_DIR"], ignore_errors=True)
        print("== smoke: {__typename} instructions per request (callgrind)")
        print(f"   runflow {ours:,.0f}, bare axum {theirs:,.0f}; ratio bare / runflow: {theirs / ours:.3f}")
        ratios["{__typename} instructions, bare axum / runflow"] = theirs / ours
    else:
        print("== smoke: valgrind not installed, {__typename} instruction count skipped")

    print(f"== smoke floors ({build} build: {binary})")
    failed = []
    for name, ratio in ratios.items():
        ok = ratio >= floors[name]
        print(f"   {name:<48} ratio {ratio:.3f}  floor {floors[name]:.3f}  {'ok' if ok else 'BELOW THE FLOOR'}")
        if not ok:
            failed.append(name)
    if failed:
        raise SystemExit("smoke: below the floor: " + ", ".join(failed))


if __name__ == "__main__":
    main()
