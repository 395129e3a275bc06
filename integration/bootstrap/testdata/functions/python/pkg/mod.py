"""A handler in a package, named pkg/mod.handler."""


def handler(event, context):
    return {"statusCode": 200, "body": "pkg " + (event.get("body") or "")}
