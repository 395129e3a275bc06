"""A custom Lambda runtime in plain Python (no library), to check that the
command integration's Runtime API serves runtimes other than aws-lambda-go.
It echoes the event's body, or reports an error when the event asks for one."""
import http.client
import json
import os
import sys

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
print("python runtime started", flush=True)

while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = conn.getresponse()
    event = json.loads(resp.read())
    request_id = resp.getheader("Lambda-Runtime-Aws-Request-Id")
    deadline = resp.getheader("Lambda-Runtime-Deadline-Ms")
    base = "/2018-06-01/runtime/invocation/" + request_id
    if event.get("op") == "error":
        body = json.dumps({"errorMessage": "python says no", "errorType": "ValueError"})
        conn.request("POST", base + "/error", body,
                     {"Lambda-Runtime-Function-Error-Type": "Function.ValueError"})
    else:
        body = json.dumps({
            "statusCode": 200,
            "body": event.get("body", ""),
            "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "deadline": deadline,
        })
        conn.request("POST", base + "/response", body, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    if answer.status != 202:
        print("runtime api answered", answer.status, file=sys.stderr, flush=True)
        sys.exit(1)
