"""The raw botocore recipe with the endpoint built from the event,
https://{domainName}/{stage}: URLLib3Session verifies against certifi's
bundle and reads no variable, so only the runtime client's patch makes it
trust wsgate's local CA."""
import json
import os

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import URLLib3Session


def handler(event, context):
    ctx = event["requestContext"]
    url = "https://%s/%s/@connections/%s" % (ctx["domainName"], ctx["stage"], ctx["connectionId"])
    request = AWSRequest(method="POST", url=url, headers={"Host": ctx["domainName"]},
                         data=json.dumps("recipe via https://%s/%s" % (ctx["domainName"], ctx["stage"])))
    SigV4Auth(boto3.Session().get_credentials(), "execute-api", os.environ["AWS_REGION"]).add_auth(request)
    response = URLLib3Session().send(request.prepare())
    return {"statusCode": response.status_code, "body": response.text}
