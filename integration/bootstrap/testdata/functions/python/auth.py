"""A REQUEST authorizer on $connect: the token query parameter decides."""


def handler(event, context):
    token = (event.get("queryStringParameters") or {}).get("token")
    effect = "Allow" if token == "letmein" else "Deny"
    return {
        "principalId": "user-" + (token or "none"),
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]},
        "context": {"via": context.function_name},
    }
