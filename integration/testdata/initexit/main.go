// Command initexit fails during init: it exits before lambda.Start, as a
// handler does when its configuration is missing.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fmt.Fprintln(os.Stderr, "init failed: missing configuration")
	os.Exit(1)
	lambda.Start(func() error { return nil })
}
