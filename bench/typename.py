"""Benchmark: `{__typename}` with a person's token, Runflow against a bare axum handler
(bench/bare_axum.rs: JSON in, JSON out, no GraphQL, no auth) on the same machine.

Alternates wrk runs of both sides (--repeat rounds of --seconds each) and prints medians and
the ratio. Only 127.0.0.1.

Usage: cargo build --release --bin runflow --example bare_axum &&
       python3 bench/typename.py [--seconds 20] [--repeat 3] [--concurrency 16]
"""

import argparse
import json
import os
import subprocess
import time
import urllib.request

from common import ROOT, Server, alternate, free_port, report, wrk

BARE = os.path.join(ROOT, "target", "release", "examples", "bare_axum")
BODY = json.dumps({"query": "{__typename}"})


def start_bare():
    if not os.path.exists(BARE):
        raise SystemExit("build it first: cargo build --release --example bare_axum")
    port = free_port()
    process = subprocess.Popen([BARE], env={"BARE_LISTEN": f"127.0.0.1:{port}"})
    url = f"http://127.0.0.1:{port}/graphql"
    for _ in range(200):
        try:
            request = urllib.request.Request(url, data=BODY.encode(), method="POST")
            request.add_header("content-type", "application/json")
            urllib.request.urlopen(request, timeout=1)
            return process, url
        except OSError:
            time.sleep(0.05)
    raise SystemExit("bare_axum did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", default="16")
    args = parser.parse_args()
    server = Server()
    bare, bare_url = start_bare()
    try:
        token = server.token("bench", "viewer")
        assert server.gql(token, "{__typename}") == {"__typename": "Query"}
        sides = {"runflow {__typename} + token": (server.url + "/graphql", {"Authorization": "Bearer " + token}),
                 "bare axum handler": (bare_url, {})}
        for c in [int(x) for x in args.concurrency.split(",")]:
            samples = alternate(list(sides), args.repeat,
                                lambda side: wrk(sides[side][0], BODY, sides[side][1], connections=c, seconds=args.seconds))
            report(f"{{__typename}} with a token, c={c}", samples, *sides)
    finally:
        bare.terminate()
        server.stop()


if __name__ == "__main__":
    main()
