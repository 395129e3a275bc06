// Handlers that fail in each way Lambda reports.
exports.throws = async () => {
  throw new TypeError("node says no");
};
exports.rejects = () => Promise.reject(new RangeError("rejected"));
exports.callbackError = (event, context, callback) => callback(new Error("via callback"));
exports.notAFunction = 42;
exports.needsSdk = async () => {
  await import("@aws-sdk/client-not-installed");
};
// Not async and no callback: Lambda ignores the return value and answers
// null once the event loop is empty; context.succeed answers explicitly.
exports.syncReturn = (event, context) => "ignored";
exports.succeed = (event, context) => {
  setTimeout(() => context.succeed({ via: "succeed" }), 10);
};
