"""The widely copied raw botocore recipe for @connections, verbatim but for
its placeholders, filled from the event: URLLib3Session reads no proxy or
CA variable."""
import json
import os

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import URLLib3Session


def handler(event, context):
    ctx = event["requestContext"]
    api_id, region, stage, connection_id = ctx["apiId"], os.environ["AWS_REGION"], ctx["stage"], ctx["connectionId"]
    data = {"via": "botocore recipe"}

    request = AWSRequest(method="POST", url=f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/@connections/{connection_id}",
                         headers={'Host': f'{api_id}.execute-api.{region}.amazonaws.com'}, data=json.dumps(data))
    SigV4Auth(boto3.Session().get_credentials(), "execute-api", region).add_auth(request)
    response = URLLib3Session().send(request.prepare())

    return {"statusCode": response.status_code, "body": response.text}
