"""Signs a management API request for execute-api with botocore's SigV4Auth
and prints the signed headers as JSON (the test sends the request itself, to
a path of its choosing). usage: sign.py METHOD URL"""
import json
import sys

import botocore.auth
import botocore.awsrequest
import botocore.credentials

creds = botocore.credentials.Credentials("AKIDLOCAL", "change-me")
req = botocore.awsrequest.AWSRequest(method=sys.argv[1], url=sys.argv[2], data=b"")
botocore.auth.SigV4Auth(creds, "execute-api", "us-east-1").add_auth(req)
print(json.dumps(dict(req.headers.items())))
