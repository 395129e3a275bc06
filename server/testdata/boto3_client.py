"""Drives wsgate's management API with boto3 and with a raw botocore
AWSRequest signed by SigV4Auth and sent with URLLib3Session (the technique
backends use when they avoid the SDK's client). Prints one JSON line of
results; the Go test checks them.

usage: boto3_client.py ENDPOINT CONNECTION_ID
"""
import json
import sys

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.httpsession
from botocore.exceptions import ClientError

endpoint, conn_id = sys.argv[1], sys.argv[2]
region = "us-east-1"
out = {}

client = boto3.client(
    "apigatewaymanagementapi",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id="AKIDLOCAL",
    aws_secret_access_key="change-me",
)
client.post_to_connection(ConnectionId=conn_id, Data=b"from boto3")
info = client.get_connection(ConnectionId=conn_id)
out["sourceIp"] = info["Identity"]["SourceIp"]
out["connectedAt"] = info["ConnectedAt"].isoformat()
try:
    client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    out["gone"] = "no error"
except ClientError as e:
    out["gone"] = e.response["Error"]["Code"]
    out["goneStatus"] = e.response["ResponseMetadata"]["HTTPStatusCode"]

# The raw technique: sign an AWSRequest with SigV4Auth for execute-api.
creds = botocore.credentials.Credentials("AKIDLOCAL", "change-me")
for path in ("/@connections/", "/%40connections/"):
    url = endpoint + path + conn_id.replace("=", "%3D")
    req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=b"raw " + path.encode())
    botocore.auth.SigV4Auth(creds, "execute-api", region).add_auth(req)
    resp = botocore.httpsession.URLLib3Session().send(req.prepare())
    out["raw" + path] = resp.status_code

bad = boto3.client(
    "apigatewaymanagementapi",
    endpoint_url=endpoint,
    region_name=region,
    aws_access_key_id="AKIDLOCAL",
    aws_secret_access_key="wrong",
)
try:
    bad.post_to_connection(ConnectionId=conn_id, Data=b"x")
    out["badSecret"] = "no error"
except ClientError as e:
    out["badSecret"] = e.response["Error"]["Code"]

client.delete_connection(ConnectionId=conn_id)
print(json.dumps(out))
