"""The smallest handler, for the overhead benchmarks."""


def handler(event, context):
    return {"statusCode": 200, "body": event.get("body")}
