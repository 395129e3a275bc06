// A CommonJS async handler, as AWS's simple-websockets-chat-app writes
// them: it calls the management API back with the JS SDK v3, then answers.
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require("@aws-sdk/client-apigatewaymanagementapi");

exports.handler = async (event, context) => {
  const { domainName, stage, connectionId } = event.requestContext;
  const client = new ApiGatewayManagementApiClient({ endpoint: `http://${domainName}/${stage}` });
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "callback from " + context.functionName }));
  console.log("answered", connectionId);
  return { statusCode: 200, body: JSON.stringify(describe(event, context)) };
};

function describe(event, context) {
  return {
    kind: "cjs",
    body: event.body,
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitInMB: context.memoryLimitInMB,
    invokedFunctionArn: context.invokedFunctionArn,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    remaining: context.getRemainingTimeInMillis(),
    waits: context.callbackWaitsForEmptyEventLoop,
    env: Object.fromEntries(
      ["_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
       "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_GROUP_NAME",
       "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_RUNTIME_API",
       "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "TZ", "NODE_PATH", "GLOBAL_ONLY", "SHARED", "FUNCTION_ONLY"]
        .map((k) => [k, process.env[k]])),
  };
}
exports.describe = describe;
