"""A command handler (a Lambda custom runtime in plain Python) that calls
the management API back over https://{domainName}/{stage}, the way real
handlers build the endpoint, trusting wsgate's local CA only through the
environment wsgate gives it: urllib through SSL_CERT_FILE, boto3 through
AWS_CA_BUNDLE. The message body says which: {"how": "urllib" | "boto3" | "env"}
(env: the variables below, over WSGATE_MANAGEMENT_ENDPOINT)."""
import http.client
import json
import os
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
import boto3

VARS = ["AWS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "WSGATE_CA_BUNDLE",
        "WSGATE_EXECUTE_API_HOST", "WSGATE_EXECUTE_API_ADDR"]

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
runtime = http.client.HTTPConnection(host, int(port))


def handle(event):
    ctx = event["requestContext"]
    endpoint = "https://%s/%s" % (ctx["domainName"], ctx["stage"])
    how = json.loads(event["body"])["how"]
    if how == "boto3":
        client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
        client.post_to_connection(ConnectionId=ctx["connectionId"], Data=b"via boto3 to " + endpoint.encode())
        return
    data = ("via urllib to " + endpoint).encode()
    if how == "env":  # over the endpoint wsgate gives, https:// or not
        endpoint = os.environ["WSGATE_MANAGEMENT_ENDPOINT"]
        data = json.dumps({k: os.environ.get(k) for k in VARS}).encode()
    url = endpoint + "/@connections/" + ctx["connectionId"]
    req = AWSRequest(method="POST", url=url, data=data)
    SigV4Auth(boto3.Session().get_credentials(), "execute-api", os.environ["AWS_REGION"]).add_auth(req)
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=dict(req.headers), method="POST")) as r:
        r.read()


while True:
    runtime.request("GET", "/2018-06-01/runtime/invocation/next")
    resp = runtime.getresponse()
    event = json.loads(resp.read())
    base = "/2018-06-01/runtime/invocation/" + resp.getheader("Lambda-Runtime-Aws-Request-Id")
    try:
        handle(event)
        runtime.request("POST", base + "/response", json.dumps({"statusCode": 200}))
    except Exception as e:
        runtime.request("POST", base + "/error", json.dumps({"errorMessage": str(e), "errorType": type(e).__name__}))
    runtime.getresponse().read()
