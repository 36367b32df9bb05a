# An agent that probes its outbound network: the proxy variables it got, and what the proxy at
# 127.0.0.1:3128 (if any) answers to each request of its input. Only 127.0.0.1 is contacted:
# every target is one the proxy must refuse before connecting anywhere.
import json
import os
import socket
import sys

INPUT = json.load(sys.stdin)


def ask_proxy(request):
    try:
        conn = socket.create_connection(("127.0.0.1", 3128), timeout=5)
    except OSError as error:
        return {"proxy": False, "error": str(error)}
    data = b""
    error = None
    try:
        conn.sendall(request.encode())
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as failure:
        # The proxy may close before reading all of an oversized head: keep what it answered.
        error = str(failure)
    finally:
        conn.close()
    text = data.decode(errors="replace")
    status = text.split(" ", 2)[1] if text.startswith("HTTP/1.1 ") else None
    return {"proxy": True, "status": int(status) if status else None, "response": text, "error": error}


results = {}
for target in INPUT["connect"]:
    results[target] = ask_proxy(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n")
results["plain_http"] = ask_proxy(
    "GET http://127.0.0.1:5432/ HTTP/1.1\r\nHost: 127.0.0.1:5432\r\n\r\n"
)
results["huge_head"] = ask_proxy(
    "CONNECT 127.0.0.1:5432 HTTP/1.1\r\nX-Pad: " + "a" * 20000 + "\r\n\r\n"
)

print(
    json.dumps(
        {
            "env": {
                key: os.environ.get(key)
                for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY"]
            },
            "results": results,
        }
    )
)
