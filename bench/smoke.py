"""CI smoke benchmark: short versions of the nested read (against PostGraphile) and of span
ingestion (against raw COPY on PostgreSQL and raw executemany on SQLite), run side by side and
alternated; fails (exit 1) when a ratio to its peer drops below its floor.

Ratios, not absolute times: both sides run on the same machine in the same minute. The floors
sit well below the ratios measured on the reference machine (README, "Performance"), so noise
does not fail CI while a real regression (an N+1 query, a lost batch insert, a per-row round
trip) does. The binary is the one `cargo test` builds (target/debug/runflow) unless --binary or
RUNFLOW_BENCH_BINARY names another; debug and release builds have their own floors.

Bounded: about 90 seconds in all (small seeds, 2-second wrk runs, 2 rounds per side).

Usage: python3 bench/smoke.py [--postgres postgres://postgres@127.0.0.1:5432/test] [--binary PATH]
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Floors per build, well below the ratios measured on the reference machine (README,
# "Performance"): debug build at load 13 measured 0.25-0.36 (read), 0.22 (PG ingest), 0.46
# (SQLite ingest); an idle machine speeds the peers up more than a debug build, hence the
# margin. Release floors: a third of the first pass's release ratios (not re-measured here).
FLOORS = {
    "debug": {"nested read / PostGraphile": 0.08, "ingest PG / COPY": 0.02, "ingest SQLite / executemany": 0.08},
    "release": {"nested read / PostGraphile": 0.15, "ingest PG / COPY": 0.04, "ingest SQLite / executemany": 0.15},
}


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

    print(f"== smoke floors ({build} build: {binary})")
    failed = []
    for name, ratio in ratios.items():
        ok = ratio >= floors[name]
        print(f"   {name:<30} ratio {ratio:.3f}  floor {floors[name]:.3f}  {'ok' if ok else 'BELOW THE FLOOR'}")
        if not ok:
            failed.append(name)
    if failed:
        raise SystemExit("smoke: below the floor: " + ", ".join(failed))


if __name__ == "__main__":
    main()
