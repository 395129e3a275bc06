"""A handler as AWS's chat sample writes it since 2024: boto3 with the
management endpoint built from the API's AWS host,
https://{apiId}.execute-api.{region}.amazonaws.com/{stage}."""
import os

import boto3


def handler(event, context):
    ctx = event["requestContext"]
    endpoint = "https://%s.execute-api.%s.amazonaws.com/%s" % (ctx["apiId"], os.environ["AWS_REGION"], ctx["stage"])
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    client.post_to_connection(ConnectionId=ctx["connectionId"], Data=("boto3 via " + endpoint).encode())
    return {"statusCode": 200}
