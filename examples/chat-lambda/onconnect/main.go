// Command onconnect is the $connect handler: it records the new
// connection's id in the connections table (TABLE_NAME).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wsgate/wsgate/examples/internal/connections"
)

func main() { lambda.Start(connections.OnConnect) }
