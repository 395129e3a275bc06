// A callback handler: it answers through callback, and a timer it leaves
// running finishes before the answer goes out (callbackWaitsForEmptyEventLoop).
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require("@aws-sdk/client-apigatewaymanagementapi");

let timerRan = false;

exports.handler = (event, context, callback) => {
  const { domainName, stage, connectionId } = event.requestContext;
  const client = new ApiGatewayManagementApiClient({ endpoint: `http://${domainName}/${stage}` });
  client
    .send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "callback from " + context.functionName }))
    .then(() => {
      const answer = { statusCode: 200, body: "" };
      setTimeout(() => {
        timerRan = true;
        answer.body = JSON.stringify({ kind: "callback", body: event.body, timerRan });
      }, 50);
      callback(null, answer);
    }, callback);
};
