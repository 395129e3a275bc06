export const handler = async (event) => ({ statusCode: 200, body: "echo:" + event.body });
