import boto3  # noqa: F401


def handler(event, context):
    return {}
