"""A DynamoDB stream target: it records each batch's event names in a file."""
import json
import os


def handler(event, context):
    names = [r["eventName"] for r in event["Records"]]
    path = os.path.join(os.environ["OUT_DIR"], context.aws_request_id + ".json")
    with open(path, "w") as f:
        json.dump(names, f)
    return {"batchItemFailures": []}
