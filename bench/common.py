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
BINARY = os.path.join(ROOT, "target", "release", "runflow")
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
