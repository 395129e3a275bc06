import boto3

# The endpoint comes from AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI, which
# wsgate sets for the functions it runs.
api = boto3.client("apigatewaymanagementapi")


def handler(event, context):
    for record in event["Records"]:
        image = record["dynamodb"].get("NewImage")
        if image:
            api.post_to_connection(
                ConnectionId=image["notify"]["S"],
                Data=("%s %s" % (record["eventName"], image["id"]["S"])).encode(),
            )
