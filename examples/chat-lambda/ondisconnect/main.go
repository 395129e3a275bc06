// Command ondisconnect is the $disconnect handler: it deletes the
// connection's id from the connections table (TABLE_NAME).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsgate/wsgate/examples/internal/connections"
)

func main() { lambda.Start(connections.OnDisconnect) }
