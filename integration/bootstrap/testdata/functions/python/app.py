"""A Python handler as the AWS docs' chat writes it: boto3's client with
endpoint_url built from the event calls the management API back."""
import json
import os

import boto3


def lambda_handler(event, context):
    rc = event["requestContext"]
    client = boto3.client("apigatewaymanagementapi",
                          endpoint_url="http://%s/%s" % (rc["domainName"], rc["stage"]))
    client.post_to_connection(ConnectionId=rc["connectionId"],
                              Data=("callback from " + context.function_name).encode())
    print("answered", rc["connectionId"])
    keys = ["_HANDLER", "LAMBDA_TASK_ROOT", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_SESSION_TOKEN", "TZ", "PYTHONPATH", "AWS_REGION", "GLOBAL_ONLY", "SHARED", "FUNCTION_ONLY"]
    return {"statusCode": 200, "body": json.dumps({
        "kind": "python",
        "body": event.get("body"),
        "awsRequestId": context.aws_request_id,
        "functionName": context.function_name,
        "functionVersion": context.function_version,
        "memoryLimitInMB": context.memory_limit_in_mb,
        "invokedFunctionArn": context.invoked_function_arn,
        "logGroupName": context.log_group_name,
        "logStreamName": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "env": {k: os.environ.get(k) for k in keys},
    })}
