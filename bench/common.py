"""Shared helpers of the load scripts: start a release `runflow` on a scratch data directory
(SQLite by default, PostgreSQL with --postgres URL) and talk GraphQL to it. Standard library
only; every request goes to 127.0.0.1."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# RUNFLOW_BENCH_BINARY measures another build (e.g. a copy of the previous one, for a before/after).
BINARY = os.environ.get("RUNFLOW_BENCH_BINARY") or os.path.join(ROOT, "target", "release", "runflow")
SECRET = "bench-secret-bench-secret-bench-secret-0123"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, database_url=None, extra_env=None):
        if not os.path.exists(BINARY):
            raise SystemExit("build it first: cargo build --release")
        self.dir = tempfile.mkdtemp(prefix="runflow-bench-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "RUNFLOW_LISTEN": f"127.0.0.1:{self.port}",
            "RUNFLOW_DATA_DIR": self.dir,
            "RUNFLOW_JWT_SECRET": SECRET,
            "RUNFLOW_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            "RUNFLOW_MAX_BUNDLE_BYTES": str(32 * 1024 * 1024),
            "RUST_LOG": "warn",
            # A benchmark measures throughput, not the per-tenant rate limits (they would answer
            # 429 to most requests) nor the cap on running executions (ingestion keeps 200 open).
            "RUNFLOW_RATE_LIMIT_GRAPHQL": "off",
            "RUNFLOW_RATE_LIMIT_RUNTIME": "off",
            "RUNFLOW_RATE_LIMIT_AGENTS": "off",
            "RUNFLOW_RATE_LIMIT_WEBHOOKS": "off",
            "RUNFLOW_RATE_LIMIT_WS_CONNECTS": "off",
            "RUNFLOW_MAX_ACTIVE_EXECUTIONS": "100000",
        }
        if database_url:
            env["RUNFLOW_DATABASE_URL"] = database_url
        env.update(extra_env or {})
        self.env = env
        self.process = subprocess.Popen([BINARY], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit("runflow did not start")

    def token(self, tenant, role):
        out = subprocess.run([BINARY, "token", "--tenant", tenant, "--role", role, "--ttl", "2h"],
                             env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def runtime_token(self, tenant, environment):
        out = subprocess.run([BINARY, "token", "--tenant", tenant, "--role", "runtime", "--environment", environment,
                              "--ttl", "2h"], env=self.env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def runtime(self, token, path, body):
        """POSTs `body` to the runtime API (`/v1/runtime` + path); the JSON answer."""
        request = urllib.request.Request(self.url + "/v1/runtime" + path, data=json.dumps(body).encode(), method="POST")
        request.add_header("content-type", "application/json")
        request.add_header("authorization", "Bearer " + token)
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def gql(self, token, query, variables=None, headers=None):
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url + "/graphql", data=body, method="POST")
        request.add_header("content-type", "application/json")
        request.add_header("authorization", "Bearer " + token)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        with urllib.request.urlopen(request, timeout=300) as response:
            result = json.loads(response.read())
        if result.get("errors"):
            raise RuntimeError(json.dumps(result["errors"])[:500])
        return result["data"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- side-by-side load runs (wrk) -------------------------------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))
POST_LUA = os.path.join(HERE, "wrk_post.lua")


def create_database(admin_url, prefix="rf_bench_"):
    """A fresh PostgreSQL database next to `admin_url`; returns its URL."""
    import uuid

    name = prefix + uuid.uuid4().hex[:12]
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_url, url):
    name = url.rsplit("/", 1)[1]
    subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def wrk(url, body, headers=None, connections=16, seconds=10, threads=2, paths=None):
    """One bounded wrk run (POST `body` to `url`); returns {rps, p50, p99, errors} (ms)."""
    if not url.startswith("http://127.0.0.1:"):
        raise SystemExit("benchmarks only talk to 127.0.0.1")
    directory = tempfile.mkdtemp(prefix="wrk-")
    body_file = os.path.join(directory, "body")
    with open(body_file, "wb") as f:
        f.write(body if isinstance(body, bytes) else body.encode())
    env = dict(os.environ, WRK_BODY=body_file, WRK_HEADERS=json.dumps(headers or {}))
    if paths:
        paths_file = os.path.join(directory, "paths")
        with open(paths_file, "w") as f:
            f.write("\n".join(paths) + "\n")
        env["WRK_PATHS"] = paths_file
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", POST_LUA, url],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    result = {"rps": 0.0, "p50": None, "p99": None, "errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            result["p" + parts[0][:-1]] = to_ms(parts[1])
        elif "Non-2xx" in line or line.strip().startswith("Socket errors"):
            result["errors"] += sum(int(x.strip(",")) for x in parts if x.strip(",").isdigit())
    return result


def to_ms(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def median(values):
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def alternate(sides, repeat, run):
    """Runs `run(side)` for each side in turn, `repeat` rounds (A B A B ...), returns the
    samples per side, so that both sides see the same machine load."""
    samples = {side: [] for side in sides}
    for round_ in range(repeat):
        order = sides if round_ % 2 == 0 else list(reversed(sides))
        for side in order:
            samples[side].append(run(side))
    return samples


def report(title, samples, ours, peer, key="rps", unit="req/s"):
    """Prints medians per side and the ratio ours/peer; returns the ratio."""
    print(f"== {title}")
    for side, runs in samples.items():
        values = " ".join(f"{r[key]:.0f}" for r in runs)
        p99 = median([r.get("p99") for r in runs])
        p99_text = f"  p99 {p99:.1f} ms" if p99 is not None else ""
        errors = sum(r.get("errors", 0) for r in runs)
        print(f"   {side:<34} median {median([r[key] for r in runs]):>10.0f} {unit}{p99_text}  (runs: {values}; errors {errors})")
    ratio = median([r[key] for r in samples[ours]]) / max(1e-9, median([r[key] for r in samples[peer]]))
    print(f"   ratio {ours} / {peer}: {ratio:.2f}")
    return ratio
