"""A Lambda handler as deployed to AWS: it builds the management endpoint
from the event, https://{domainName}/{stage}, and calls it with boto3."""
import boto3


def handler(event, context):
    ctx = event["requestContext"]
    endpoint = "https://%s/%s" % (ctx["domainName"], ctx["stage"])
    client = boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)
    client.post_to_connection(ConnectionId=ctx["connectionId"], Data=("function via " + endpoint).encode())
    return {"statusCode": 200}
