"""A hostile agent: it tries to break out of its sandbox and to misuse its token.

The input names the attempt (`{"attempt": "probe", ...}`); the output reports, for each try,
whether it was blocked and what happened, so the test can assert every one failed. Standard
library only, like every agent."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

INPUT = json.load(sys.stdin)
API = os.environ.get("RUNFLOW_API_URL", "") + "/v1/runtime"
TOKEN = os.environ.get("RUNFLOW_TOKEN", "")


def call(method, path, body=None):
    """(status, body) of a runtime API call with the run's own token."""
    request = urllib.request.Request(
        API + path, method=method, data=None if body is None else json.dumps(body).encode()
    )
    request.add_header("authorization", "Bearer " + TOKEN)
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except Exception as error:  # noqa: BLE001 - report anything
        return 0, repr(error)


def read(path):
    try:
        with open(path, "rb") as file:
            return {"blocked": False, "detail": file.read(4096).decode(errors="replace").replace("\0", " ")}
    except Exception as error:  # noqa: BLE001
        return {"blocked": True, "detail": repr(error)}


def listdir(path):
    try:
        return {"blocked": False, "detail": sorted(os.listdir(path))}
    except Exception as error:  # noqa: BLE001
        return {"blocked": True, "detail": repr(error)}


def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return {"blocked": False, "detail": f"connected to {host}:{port}"}
    except Exception as error:  # noqa: BLE001
        return {"blocked": True, "detail": repr(error)}


def write(path):
    try:
        with open(path, "w") as file:
            file.write("pwned")
        return {"blocked": False, "detail": f"wrote {path}"}
    except Exception as error:  # noqa: BLE001
        return {"blocked": True, "detail": repr(error)}


def refused(status, body):
    return {"blocked": status in (401, 403), "detail": f"{status} {body[:300]}"}


def processes():
    """Every process this run can see, with its command line."""
    seen = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    seen[entry] = file.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except Exception:  # noqa: BLE001
                pass
    return seen


def probe():
    data_dir = INPUT["dataDir"]
    results = {
        "uid": {"blocked": os.getuid() != 0, "detail": f"uid {os.getuid()}"},
        "read_jwt_secret": read(os.path.join(data_dir, "jwt-secret")),
        "read_secret_key": read(os.path.join(data_dir, "secret-key")),
        "list_data_dir": listdir(data_dir),
        "read_database": read(os.path.join(data_dir, "runflow.db")),
        "read_other_run_tmp": read(INPUT["otherRunFile"]),
        "list_other_run_tmp": listdir(os.path.dirname(INPUT["otherRunFile"])),
        "server_environ": read(f"/proc/{INPUT['serverPid']}/environ"),
        "server_cmdline": read(f"/proc/{INPUT['serverPid']}/cmdline"),
        "connect_postgres": connect("127.0.0.1", 5432),
        "connect_server_port": connect("127.0.0.1", INPUT["serverPort"]),
        "connect_internet": connect("1.1.1.1", 53),
        "write_bundle": write("main_copy.py"),
        "write_root": write("/pwned"),
        "write_usr": write("/usr/pwned"),
    }
    # /proc/1 is the sandbox's own init: readable or not, it holds no secret (the test checks
    # that no secret appears anywhere in this output).
    pid1 = read("/proc/1/environ")
    results["proc1_environ"] = {"blocked": True, "detail": pid1["detail"]}
    visible = processes()
    results["list_processes"] = {
        "blocked": len(visible) <= 6 and not any("runflow-data" in c or c.endswith(" serve") for c in visible.values()),
        "detail": visible,
    }
    other = INPUT["otherExecution"]
    results["spans_for_other_execution"] = refused(
        *call("POST", f"/executions/{other}/spans", {"spans": [{"name": "x", "kind": "CUSTOM", "startTime": "2026-01-01T00:00:00Z"}]})
    )
    results["finish_other_execution"] = refused(*call("POST", f"/executions/{other}/finish", {"status": "FAILED"}))
    otlp = {"resourceSpans": [{"resource": {"attributes": [
        {"key": "runflow.execution_id", "value": {"stringValue": other}}]},
        "scopeSpans": [{"spans": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                                   "name": "x", "startTimeUnixNano": "1700000000000000000"}]}]}]}
    results["otlp_for_other_execution"] = refused(*call("POST", "/otlp/v1/traces", otlp))
    results["read_other_agent_memory"] = refused(*call("GET", "/memory/victim/secret"))
    results["read_other_agent_memory_stored_name"] = refused(*call("GET", "/memory/staging:victim/secret"))
    results["overwrite_other_agent_memory"] = refused(*call("PUT", "/memory/victim/secret", {"value": "pwned"}))
    results["undeclared_prompt"] = refused(*call("GET", "/prompts/victim-prompt"))
    # What the run may do still works (so the refusals above are not an API outage).
    own = os.environ["RUNFLOW_MEMORY_NAMESPACE"]
    status, body = call("PUT", f"/memory/{own}/note", {"value": "mine"})
    for result in results.values():
        result["detail"] = str(result["detail"])[:300]
    return {"results": results, "ownMemory": status, "token": TOKEN}


def fork_bomb():
    children, error = [], None
    try:
        for _ in range(2000):
            children.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)", INPUT["marker"]]))
    except Exception as e:  # noqa: BLE001
        error = repr(e)
    count = len(children)
    for child in children:
        child.kill()
    return {"started": count, "error": error}


def fill_disk():
    written, error = 0, None
    try:
        with open("/tmp/fill", "wb") as file:
            chunk = b"x" * (1 << 20)
            while written < (1 << 30):
                file.write(chunk)
                file.flush()
                written += len(chunk)
    except Exception as e:  # noqa: BLE001
        error = repr(e)
    return {"written": written, "error": error}


def flood_stdout():
    chunk = "x" * (1 << 20)
    for _ in range(100):
        sys.stdout.write(chunk)
    sys.stdout.flush()
    return None


def grandchild():
    # A daemon in its own session that would keep the token and the pipe alive.
    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(1000)", INPUT["marker"]],
        start_new_session=True,
        stdout=sys.stdout,
        stderr=subprocess.DEVNULL,
    )
    print("grandchild started; now hanging", file=sys.stderr, flush=True)
    time.sleep(1000)


ATTEMPTS = {"probe": probe, "fork_bomb": fork_bomb, "fill_disk": fill_disk, "flood_stdout": flood_stdout, "grandchild": grandchild}
report = ATTEMPTS[INPUT["attempt"]]()
if report is not None:
    print(json.dumps(report))
