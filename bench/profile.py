"""Profile one request path of the release `runflow` with valgrind's callgrind (instruction
counts: repeatable on a shared machine, unlike wall-clock samples).

Seeds a scratch database with a normal server first (PostgreSQL with --postgres, else SQLite),
then restarts the same binary under `valgrind --tool=callgrind` on that database, sends
--requests sequential requests of the chosen path, stops it and prints the top functions by
inclusive and exclusive instruction count (callgrind_annotate), plus instructions per request.

Paths:
- typename: `{__typename}` with a viewer's token (POST /graphql).
- nested:   the nested read of bench/nested_read.py (50 executions, agent, 10 spans each).
- ingest:   a 1,000-span batch through the runtime API (bench/ingest.py's body).

Usage: cargo build --release --bin runflow && apt-get install -y valgrind &&
       python3 bench/profile.py typename|nested|ingest [--postgres URL] [--requests 200]
       [--executions 100] [--top 40]
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import BINARY, Server, create_database, drop_database

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


CONNECTION = {}


def post(url, body, headers):
    """POST over one kept-alive connection (as wrk does), so per-connection costs stay out."""
    host, path = url.removeprefix("http://").split("/", 1)
    for attempt in range(2):
        if host not in CONNECTION:
            CONNECTION[host] = http.client.HTTPConnection(host, timeout=600)
        connection = CONNECTION[host]
        try:
            connection.request("POST", "/" + path, body=body, headers={"content-type": "application/json", **headers})
            response = connection.getresponse()
            return json.loads(response.read())
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closed an idle kept-alive connection (valgrind is slow): reconnect once.
            connection.close()
            del CONNECTION[host]
            if attempt:
                raise


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("path", choices=["typename", "nested", "ingest"])
    parser.add_argument("--postgres", help="admin URL: profile on a fresh PostgreSQL database next to it")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", default=None, help="callgrind output file (kept)")
    args = parser.parse_args()

    url = create_database(args.postgres) if args.postgres else None
    server = Server(database_url=url)
    try:
        if args.path == "typename":
            token = server.token("bench", "viewer")
            target = "/graphql"
            body = json.dumps({"query": "{__typename}"}).encode()
            bodies = [body]
        elif args.path == "nested":
            from nested_read import RUNFLOW_QUERY, seed
            token = seed(server, args.executions)
            target = "/graphql"
            bodies = [json.dumps({"query": RUNFLOW_QUERY}).encode()]
            if url:
                subprocess.run(["psql", url, "-qc", "ANALYZE"], check=True)
        else:
            from ingest import prepare
            token, executions, body = prepare(server)
            bodies = [(f"/executions/{e}/spans", body.encode()) for e in executions]
            target = None
        env = server.env
        server.stop()
    except BaseException:
        server.stop()
        raise

    out = args.out or tempfile.mktemp(prefix=f"callgrind-{args.path}-", suffix=".out")
    valgrind = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
         "--instr-atstart=no", BINARY],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = "http://" + env["RUNFLOW_LISTEN"]
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=5)
                break
            except OSError:
                time.sleep(0.2)
        headers = {"Authorization": "Bearer " + token}

        def one(i):
            if target:
                result = post(base + target, bodies[0], headers)
                assert not result.get("errors"), result
            else:
                path, body = bodies[i % len(bodies)]
                result = post(base + "/v1/runtime" + path, body, headers)
                assert "error" not in result and "errors" not in result, str(result)[:300]

        for i in range(3):  # warm caches (token, document, connections) before counting
            one(i)
        subprocess.run(["callgrind_control", "--instr=on", str(valgrind.pid)], check=True, stdout=subprocess.DEVNULL)
        for i in range(args.requests):
            one(i + 3)
        subprocess.run(["callgrind_control", "--instr=off", str(valgrind.pid)], check=True, stdout=subprocess.DEVNULL)
    finally:
        valgrind.terminate()
        valgrind.wait(timeout=300)
        if url:
            drop_database(args.postgres, url)
        shutil.rmtree(env["RUNFLOW_DATA_DIR"], ignore_errors=True)

    for mode in (["--inclusive=yes"], ["--inclusive=no"]):
        text = subprocess.run(["callgrind_annotate", *mode, out], capture_output=True, text=True, check=True).stdout
        lines = text.splitlines()
        total = next((l for l in lines if "PROGRAM TOTALS" in l), "")
        print(f"== {args.path} ({'inclusive' if mode[0].endswith('yes') else 'exclusive'}), {args.requests} requests")
        if total and total.split()[0].replace(",", "").isdigit():
            instructions = int(total.split()[0].replace(",", ""))
            print(f"   {instructions / args.requests:,.0f} instructions per request")
        start = next((i for i, l in enumerate(lines) if l.startswith("Ir") or "file:function" in l), 0)
        body = [l for l in lines[start + 1:] if l.strip() and not l.startswith("-")]
        for line in body[: args.top]:
            print("   " + line[:220])
    print(f"callgrind output: {out}")


if __name__ == "__main__":
    main()
