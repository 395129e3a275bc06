// wsgate's runtime interface client for Node.js: the part of Lambda's
// nodejs runtimes that loads the handler named by _HANDLER from
// LAMBDA_TASK_ROOT and serves it events from the Lambda Runtime API at
// AWS_LAMBDA_RUNTIME_API. Standard library only; embedded in wsgate.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
const handlerString = process.env._HANDLER || "";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = "/2018-06-01/runtime";

// request sends one Runtime API request and resolves with the status,
// headers and body.
function request(method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const [host, port] = api.split(":");
    const req = http.request(
      { host, port, path: base + urlPath, method, agent, headers: headers || {} },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (body !== undefined) {
      req.setHeader("Content-Type", "application/json");
      req.setHeader("Content-Length", Buffer.byteLength(body));
      req.end(body);
    } else {
      req.end();
    }
  });
}

// routeExecuteApi sends connections to the gateway's AWS host to wsgate.
// Handlers build https://{apiId}.execute-api.{region}.amazonaws.com/{stage}
// themselves; wsgate names that one host and its own address in
// WSGATE_EXECUTE_API_HOST and WSGATE_EXECUTE_API_ADDR (set while it serves
// TLS). Every TCP connection (net.connect, tls.connect, the http and https
// agents, fetch) goes through net.Socket's connect, which here replaces that
// host and whatever port with wsgate's address and port. TLS keeps the
// options it was given, so it still sends and verifies the real host name,
// which wsgate's certificate covers. Every other host connects as before.
function routeExecuteApi() {
  const host = (process.env.WSGATE_EXECUTE_API_HOST || "").toLowerCase().replace(/\.$/, "");
  const addr = process.env.WSGATE_EXECUTE_API_ADDR || "";
  const colon = addr.lastIndexOf(":");
  if (!host || colon < 0) return;
  const toHost = addr.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const toPort = Number(addr.slice(colon + 1));
  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (...args) {
    // connect(options[, cb]), connect(port[, host][, cb]), or the
    // [options, cb] array net.connect passes on.
    let [options, cb] = Array.isArray(args[0]) ? args[0] : [args[0], args[1]];
    if (typeof options !== "object" || options === null) {
      if (typeof args[1] !== "string") return connect.apply(this, args);
      options = { port: args[0], host: args[1] };
      cb = args[2];
    }
    if (typeof options.host !== "string" || options.host.toLowerCase().replace(/\.$/, "") !== host) {
      return connect.apply(this, args);
    }
    return connect.call(this, { ...options, host: toHost, port: toPort }, cb);
  };
}

// Lambda's bundled AWS SDK: nodejs18.x and later ship v3 (@aws-sdk/*).
// wsgate bundles none, so say how to get it.
function sdkHint(message) {
  const m = /['"](@aws-sdk\/[^'"/]+)/.exec(message || "");
  if (!m) return "";
  return (
    `. Lambda's ${process.env.AWS_EXECUTION_ENV ? process.env.AWS_EXECUTION_ENV.replace("AWS_Lambda_", "") : "nodejs"} runtime bundles the AWS SDK for JavaScript v3; ` +
    `wsgate does not: run \`npm install ${m[1]}\` in ${taskRoot}`
  );
}

// errorDocument is Lambda's error shape for Node.js: errorType,
// errorMessage and trace (the stack, one line per element).
function errorDocument(err, type) {
  if (!(err instanceof Error)) {
    const msg = typeof err === "string" ? err : safeStringify(err);
    return { errorType: type || "string", errorMessage: msg, trace: [] };
  }
  let message = err.message;
  if (err.code === "MODULE_NOT_FOUND" || err.code === "ERR_MODULE_NOT_FOUND") {
    message += sdkHint(message); // a dynamic import() or require() in the handler
  }
  return {
    errorType: type || err.name || "Error",
    errorMessage: message,
    trace: typeof err.stack === "string" ? err.stack.split("\n") : [],
  };
}

function safeStringify(v) {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

class RuntimeError extends Error {
  constructor(type, message, cause) {
    super(message);
    this.name = type;
    if (cause && cause.stack) this.stack = `${type}: ${message}\n` + cause.stack.split("\n").slice(1).join("\n");
  }
}

// moduleFile finds the module for name (a path relative to the task root,
// without extension) the way Lambda's runtime does: .js, .mjs, .cjs, then
// whatever require resolves (a directory with index.js).
function moduleFile(name) {
  const p = path.resolve(taskRoot, name);
  for (const ext of [".js", ".mjs", ".cjs"]) {
    if (fs.existsSync(p + ext)) return p + ext;
  }
  return p;
}

// isESM reports whether a .js file is an ES module: the nearest
// package.json says "type": "module".
function isESM(file) {
  if (file.endsWith(".mjs")) return true;
  if (!file.endsWith(".js")) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, "utf8")).type === "module";
      } catch {
        return false;
      }
    }
    if (dir === path.dirname(dir)) return false;
  }
}

async function loadHandler() {
  // "src/app.handler": module src/app, function handler; "app.a.b" is the
  // nested property a.b of module app.
  const slash = handlerString.lastIndexOf("/");
  const dot = handlerString.indexOf(".", slash + 1);
  if (dot < 0) {
    throw new RuntimeError("Runtime.MalformedHandlerName", `Bad handler ${handlerString}`);
  }
  const moduleName = handlerString.slice(0, dot);
  const fnPath = handlerString.slice(dot + 1);
  const file = moduleFile(moduleName);
  let mod;
  try {
    if (isESM(file)) {
      mod = await import(pathToFileURL(file).href);
    } else {
      mod = require(file);
    }
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new RuntimeError("Runtime.UserCodeSyntaxError", `${err.name}: ${err.message}`, err);
    }
    if (err && (err.code === "MODULE_NOT_FOUND" || err.code === "ERR_MODULE_NOT_FOUND")) {
      const missingSelf = !fs.existsSync(file) && !fs.existsSync(file + ".js");
      const msg = missingSelf ? `Error: Cannot find module '${moduleName}'` : `${err.name}: ${err.message}`;
      throw new RuntimeError("Runtime.ImportModuleError", msg + sdkHint(err.message), err);
    }
    throw err;
  }
  let fn = mod;
  for (const part of fnPath.split(".")) {
    fn = fn == null ? undefined : fn[part];
  }
  if (fn === undefined && mod && mod.default && typeof mod.default === "object") {
    // A CommonJS module imported as ESM: its exports are the default.
    fn = mod.default;
    for (const part of fnPath.split(".")) fn = fn == null ? undefined : fn[part];
  }
  if (fn === undefined) {
    throw new RuntimeError("Runtime.HandlerNotFound", `${handlerString} is undefined or not exported`);
  }
  if (typeof fn !== "function") {
    throw new RuntimeError("Runtime.HandlerNotFound", `${handlerString} is not a function`);
  }
  return fn;
}

function makeContext(headers, finish) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  const ctx = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers["lambda-runtime-aws-request-id"],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    identity: undefined,
    clientContext: undefined,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    // The legacy completion methods, as Lambda still provides them.
    done: (err, result) => finish(err, result, false),
    succeed: (result) => finish(null, result, false),
    fail: (err) => finish(err || "handled", undefined, false),
  };
  return ctx;
}

// invoke runs the handler for one event and resolves with [error, result].
function invoke(handler, event, headers) {
  return new Promise((resolve) => {
    let settled = false;
    let onEmpty = null; // the beforeExit listener while one is set
    const whenEmpty = (fn) => {
      onEmpty = () => {
        onEmpty = null;
        fn();
      };
      process.once("beforeExit", onEmpty);
    };
    const finish = (err, result, fromCallback) => {
      if (settled) return;
      settled = true;
      if (onEmpty) process.removeListener("beforeExit", onEmpty);
      onEmpty = null;
      if (fromCallback && ctx.callbackWaitsForEmptyEventLoop) {
        // Lambda answers a callback handler once the event loop is empty:
        // timers and sockets the handler left running finish first.
        whenEmpty(() => resolve([err, result]));
        return;
      }
      resolve([err, result]);
    };
    const ctx = makeContext(headers, finish);
    const callback = (err, result) => finish(err == null ? null : err, result, true);
    let ret;
    try {
      ret = handler(event, ctx, callback);
    } catch (err) {
      finish(err, undefined, false);
      return;
    }
    if (ret && typeof ret.then === "function") {
      ret.then(
        (result) => finish(null, result, false),
        (err) => finish(err == null ? new Error("handler rejected with " + err) : err, undefined, false),
      );
    } else if (!settled) {
      // Neither a promise nor an answer yet: the answer comes from callback
      // or context.done/succeed/fail. With none, Lambda answers null once
      // the event loop is empty (a non-async handler's return value is
      // ignored).
      whenEmpty(() => finish(null, null, false));
    }
  });
}

async function postError(urlPath, err, type) {
  const doc = errorDocument(err, type);
  console.error(`${type && type.startsWith("Runtime.") ? "" : "Invoke Error \t"}${JSON.stringify(doc)}`);
  await request("POST", urlPath, JSON.stringify(doc), { "Lambda-Runtime-Function-Error-Type": doc.errorType });
}

async function main() {
  routeExecuteApi();
  let handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    const type = err instanceof RuntimeError ? err.name : err && err.name ? err.name : "Runtime.Unknown";
    await postError("/init/error", err, type);
    process.exit(1);
  }
  for (;;) {
    const next = await request("GET", "/invocation/next");
    if (next.status !== 200) {
      console.error(`Runtime API /next answered ${next.status}: ${next.body}`);
      process.exit(1);
    }
    const id = next.headers["lambda-runtime-aws-request-id"];
    if (next.headers["lambda-runtime-trace-id"]) {
      process.env._X_AMZN_TRACE_ID = next.headers["lambda-runtime-trace-id"];
    }
    let event;
    try {
      event = JSON.parse(next.body.toString("utf8"));
    } catch (err) {
      await postError(`/invocation/${id}/error`, err, "Runtime.UnmarshalError");
      continue;
    }
    const [err, result] = await invoke(handler, event, next.headers);
    if (err != null) {
      await postError(`/invocation/${id}/error`, err);
      continue;
    }
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
      await postError(`/invocation/${id}/error`, e, "Runtime.MarshalError");
      continue;
    }
    await request("POST", `/invocation/${id}/response`, body);
  }
}

// Errors the handler leaves behind (a rejected promise nobody awaits, an
// exception in a timer) end the process, as in Lambda, whose next invoke
// starts a fresh one.
process.on("uncaughtException", (err) => {
  console.error("Uncaught Exception \t" + JSON.stringify(errorDocument(err)));
  process.exit(129);
});
process.on("unhandledRejection", (reason) => {
  const err = reason instanceof Error ? reason : new Error(String(reason));
  console.error("Unhandled Promise Rejection \t" + JSON.stringify(errorDocument(err, "Runtime.UnhandledPromiseRejection")));
  process.exit(128);
});

main().catch((err) => {
  console.error("wsgate runtime: " + (err && err.stack ? err.stack : err));
  process.exit(1);
});
