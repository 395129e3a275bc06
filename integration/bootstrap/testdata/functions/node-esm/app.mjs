// An ES module handler (.mjs), as AWS's chat sample has been since 2024.
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";

export const handler = async (event, context) => {
  const { domainName, stage, connectionId } = event.requestContext;
  const client = new ApiGatewayManagementApiClient({ endpoint: `http://${domainName}/${stage}` });
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "callback from " + context.functionName }));
  return { statusCode: 200, body: JSON.stringify({ kind: "esm", body: event.body, functionName: context.functionName }) };
};
