"""wsgate's runtime interface client for Python.

The part of Lambda's python runtimes that imports the handler named by
_HANDLER from LAMBDA_TASK_ROOT and serves it events from the Lambda Runtime
API at AWS_LAMBDA_RUNTIME_API. Standard library only; embedded in wsgate.
"""

import http.client
import importlib
import importlib.machinery
import json
import logging
import os
import socket
import sys
import time
import traceback

BASE = "/2018-06-01/runtime"

# The packages Lambda's python runtimes bundle (boto3 and what it needs).
BUNDLED = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}


def route_execute_api():
    """Sends connections to the gateway's AWS host to wsgate.

    Handlers build https://{apiId}.execute-api.{region}.amazonaws.com/{stage}
    themselves. wsgate names that one host and its own address in
    WSGATE_EXECUTE_API_HOST and WSGATE_EXECUTE_API_ADDR (set while it serves
    TLS); every name lookup of that host, whatever the port asked for,
    answers wsgate's address and port. Only the address changes: TLS still
    sends and verifies the real host name, which wsgate's certificate covers.
    Every other name resolves as before. socket.create_connection,
    http.client, urllib3 (so botocore and requests) and asyncio all look
    names up through socket.getaddrinfo.
    """
    host = os.environ.get("WSGATE_EXECUTE_API_HOST", "").lower().rstrip(".")
    addr = os.environ.get("WSGATE_EXECUTE_API_ADDR", "")
    if not host or not addr:
        return
    to_host, _, to_port = addr.rpartition(":")
    to_host, to_port = to_host.strip("[]"), int(to_port)
    resolve = socket.getaddrinfo

    def getaddrinfo(name, port, family=0, type=0, proto=0, flags=0):
        n = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        if isinstance(n, str) and n.lower().rstrip(".") == host:
            return resolve(to_host, to_port, family, type, proto, flags)
        return resolve(name, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo
    # A proxy from the environment would resolve the real host itself.
    if os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY"):
        for var in ("no_proxy", "NO_PROXY"):
            os.environ[var] = ",".join(filter(None, [os.environ.get(var), host]))


class PatchOnImport:
    """A meta path finder that runs patch(module) right after the module
    named name is executed, so a module the handler may never import costs
    nothing."""

    def __init__(self, name, patch):
        self.name = name
        self.patch = patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def trust_bundle_in_botocore():
    """botocore's URLLib3Session, which the widely copied raw recipe uses,
    verifies against certifi's bundle (or botocore's own) and reads no
    variable: point it at WSGATE_CA_BUNDLE, the system's CAs plus wsgate's
    local CA. A session given verify= explicitly keeps its choice."""
    bundle = os.environ.get("WSGATE_CA_BUNDLE", "")
    if not bundle:
        return

    def patch(module):
        module.where = lambda: bundle

    sys.meta_path.insert(0, PatchOnImport("botocore.httpsession", patch))


class RuntimeAPI:
    """A keep-alive client of the Runtime API."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port))

    def request(self, method, path, body=None, headers=None):
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        self.conn.request(method, BASE + path, body=body, headers=hdrs)
        resp = self.conn.getresponse()
        return resp.status, resp.headers, resp.read()


class FaultError(Exception):
    """An init failure in Lambda's terms: a Runtime.* type and a message."""

    def __init__(self, error_type, message, tb=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.tb = tb


def error_document(exc, error_type=None, tb=None):
    """Lambda's error shape for Python: errorMessage, errorType, requestId,
    stackTrace (one formatted frame per element)."""
    if tb is None:
        tb = exc.__traceback__
    frames = traceback.format_list(traceback.extract_tb(tb)) if tb is not None else []
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": frames,
    }


def bundled_hint(exc):
    name = getattr(exc, "name", None) or ""
    if name.split(".")[0] in BUNDLED:
        runtime = os.environ.get("AWS_EXECUTION_ENV", "").replace("AWS_Lambda_", "") or "python"
        return (". Lambda's %s runtime bundles boto3; wsgate does not: run `pip install boto3` "
                "for %s" % (runtime, sys.executable))
    return ""


def load_handler(handler):
    """Imports the module and returns the function, as Lambda's runtime:
    "app.lambda_handler", "pkg/mod.handler" or "pkg.mod.handler"."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultError("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    modname = modname.replace("/", ".")
    if modname.startswith("__"):
        raise FaultError("Runtime.BadHandler",
                         "Cannot use built-in module %s as a handler module" % modname)
    try:
        mod = importlib.import_module(modname)
    except ImportError as e:
        tb = e.__traceback__
        raise FaultError("Runtime.ImportModuleError",
                         "Unable to import module '%s': %s%s" % (modname, e, bundled_hint(e)), tb)
    except SyntaxError as e:
        raise FaultError("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e),
                         e.__traceback__)
    fn = getattr(mod, fname, None)
    if fn is None:
        raise FaultError("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))
    return fn


class LambdaContext:
    """The context object of Lambda's python runtime."""

    def __init__(self, request_id, deadline_ms, arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self):
        return ("LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
                "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=None,"
                "identity=None])" % (self.aws_request_id, self.log_group_name, self.log_stream_name,
                                     self.function_name, self.memory_limit_in_mb, self.function_version,
                                     self.invoked_function_arn))


class RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record):
        record.aws_request_id = RequestIdFilter.request_id
        return True


def setup_logging():
    """The root logger Lambda's python runtime installs: one line per record,
    with the level, a UTC time and the request id."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.formatter.converter = time.gmtime
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)


def post_invocation_error(rt, request_id, doc):
    doc["requestId"] = request_id
    print("[ERROR] %s" % json.dumps(doc), file=sys.stderr, flush=True)
    rt.request("POST", "/invocation/%s/error" % request_id, json.dumps(doc),
               {"Lambda-Runtime-Function-Error-Type": doc["errorType"]})


def main():
    task_root = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    os.chdir(task_root)
    setup_logging()
    route_execute_api()
    trust_bundle_in_botocore()
    rt = RuntimeAPI(os.environ["AWS_LAMBDA_RUNTIME_API"])
    try:
        handler = load_handler(os.environ.get("_HANDLER", ""))
    except FaultError as e:
        doc = error_document(e, e.error_type, e.tb)
        doc["errorMessage"] = e.message
        doc.pop("requestId")
        print("[ERROR] %s: %s" % (e.error_type, e.message), file=sys.stderr, flush=True)
        rt.request("POST", "/init/error", json.dumps(doc), {"Lambda-Runtime-Function-Error-Type": e.error_type})
        sys.exit(1)
    except Exception as e:  # an exception raised by the module's own code
        doc = error_document(e)
        doc.pop("requestId")
        print("[ERROR] %s: %s" % (doc["errorType"], e), file=sys.stderr, flush=True)
        traceback.print_exc()
        rt.request("POST", "/init/error", json.dumps(doc), {"Lambda-Runtime-Function-Error-Type": doc["errorType"]})
        sys.exit(1)

    while True:
        status, headers, body = rt.request("GET", "/invocation/next")
        if status != 200:
            print("Runtime API /next answered %d: %s" % (status, body), file=sys.stderr, flush=True)
            sys.exit(1)
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        RequestIdFilter.request_id = request_id
        trace = headers.get("Lambda-Runtime-Trace-Id")
        if trace:
            os.environ["_X_AMZN_TRACE_ID"] = trace
        ctx = LambdaContext(request_id, int(headers.get("Lambda-Runtime-Deadline-Ms", "0")),
                            headers.get("Lambda-Runtime-Invoked-Function-Arn"))
        try:
            result = handler(json.loads(body), ctx)
        except Exception as e:
            post_invocation_error(rt, request_id, error_document(e))
            continue
        try:
            out = json.dumps(result)
        except (TypeError, ValueError) as e:
            post_invocation_error(rt, request_id, {
                "errorMessage": "Unable to marshal response: %s" % e, "errorType": "Runtime.MarshalError",
                "requestId": request_id, "stackTrace": []})
            continue
        rt.request("POST", "/invocation/%s/response" % request_id, out)


if __name__ == "__main__":
    main()
