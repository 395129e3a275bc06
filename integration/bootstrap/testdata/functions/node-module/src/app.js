// An ES module by package.json "type": "module", in a subdirectory
// (handler src/app.handler), with top-level await.
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from "@aws-sdk/client-apigatewaymanagementapi";

const greeting = await Promise.resolve("module");

export async function handler(event, context) {
  const { domainName, stage, connectionId } = event.requestContext;
  const client = new ApiGatewayManagementApiClient({ endpoint: `http://${domainName}/${stage}` });
  await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: "callback from " + context.functionName }));
  return { statusCode: 200, body: JSON.stringify({ kind: greeting, body: event.body, functionName: context.functionName }) };
}
