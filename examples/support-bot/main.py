"""A Runflow agent in plain Python (standard library only).

The runner starts it with the input as JSON on stdin and reads its output as JSON from stdout.
It talks to Runflow through the runtime API with the environment's RUNFLOW_* variables, so the
same code resolves the staging draft in staging and the published prompt in production."""

import datetime
import json
import os
import sys
import urllib.request

API = os.environ["RUNFLOW_API_URL"] + "/v1/runtime"
TOKEN = os.environ["RUNFLOW_TOKEN"]


def call(method, path, body=None):
    request = urllib.request.Request(API + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("authorization", "Bearer " + TOKEN)
    request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None


question = json.load(sys.stdin).get("question", "")
started = datetime.datetime.now(datetime.timezone.utc).isoformat()
prompt = call("GET", "/prompts/greeting")
answer = prompt["template"].replace("{{question}}", question)
namespace = os.environ["RUNFLOW_MEMORY_NAMESPACE"]
call("PUT", f"/memory/{namespace}/last-question", {"value": question})
call("POST", f"/executions/{os.environ['RUNFLOW_EXECUTION_ID']}/spans", {"spans": [{
    "name": "answer", "kind": "PROMPT", "startTime": started,
    "endTime": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    "attributes": {"prompt.version": prompt["version"]},
}]})
print("answering in", os.environ["RUNFLOW_ENVIRONMENT"], file=sys.stderr)
print(json.dumps({"answer": answer, "environment": os.environ["RUNFLOW_ENVIRONMENT"], "promptVersion": prompt["version"]}))
