// A handler as AWS's simple-websockets-chat-app writes it since 2024: the
// JS SDK v3 with the management endpoint built from the API's AWS host,
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}.
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require("@aws-sdk/client-apigatewaymanagementapi");

exports.handler = async (event) => {
  const { apiId, stage, connectionId } = event.requestContext;
  const endpoint = `https://${apiId}.execute-api.${process.env.AWS_REGION}.amazonaws.com/${stage}`;
  const client = new ApiGatewayManagementApiClient({ endpoint });
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "JS SDK v3 via " + endpoint }));
  return { statusCode: 200 };
};
