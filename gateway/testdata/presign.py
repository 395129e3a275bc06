"""Presigns a WebSocket $connect URL for execute-api with botocore, as a
browser or device app does for AWS_IAM authorisation. usage: presign.py URL"""
import sys

import botocore.auth
import botocore.awsrequest
import botocore.credentials

creds = botocore.credentials.Credentials("AKIDLOCAL", "change-me")
req = botocore.awsrequest.AWSRequest(method="GET", url=sys.argv[1])
botocore.auth.SigV4QueryAuth(creds, "execute-api", "us-east-1", expires=300).add_auth(req)
print(req.url)
