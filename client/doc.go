// Package client is a Go client for wsgate's management API extensions:
// groups (join, leave, publish, members) and the connection listing. It
// signs every request with aws-sdk-go-v2's SigV4 signer (service
// execute-api), resolves credentials and region with the SDK's standard
// chain, and reports failures as *APIError values that satisfy
// smithy.APIError, so code written for the SDK's errors handles these too.
//
// For one connection (PostToConnection, GetConnection, DeleteConnection) use
// the SDK's own apigatewaymanagementapi client: Client.Management returns
// one on the same endpoint, region, credentials and HTTP client.
//
// A Client is safe for concurrent use. It does not retry: every method makes
// exactly one HTTP request (a paginator one per page), so a Publish is never
// delivered twice by the client.
package client
