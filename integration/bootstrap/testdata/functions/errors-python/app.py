"""Handlers that fail in each way Lambda reports."""


def raises(event, context):
    raise ValueError("python says no")


def unserializable(event, context):
    return {"when": object()}
