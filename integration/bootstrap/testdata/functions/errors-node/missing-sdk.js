const { DynamoDBClient } = require("@aws-sdk/client-dynamodb");
exports.handler = async () => new DynamoDBClient({});
