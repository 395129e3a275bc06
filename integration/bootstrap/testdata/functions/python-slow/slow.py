"""2.5 s of imports, as a handler with heavy dependencies has, and a 3 s
timeout: Lambda's init phase does not count against it."""
import time

time.sleep(2.5)


def handler(event, context):
    return {"statusCode": 200, "body": "slow but ready, %d ms left" % context.get_remaining_time_in_millis()}
