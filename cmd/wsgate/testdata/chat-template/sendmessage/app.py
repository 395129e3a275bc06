import json
import os

import boto3

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
# The endpoint comes from AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, which
# wsgate sets for the functions it runs.
api = boto3.client("apigatewaymanagementapi")


def handler(event, context):
    data = json.loads(event["body"])["data"]
    for item in table.scan(ProjectionExpression="connectionId")["Items"]:
        api.post_to_connection(ConnectionId=item["connectionId"], Data=data.encode())
    return {"statusCode": 200, "body": "Data sent."}
