// Command initerror is a custom runtime, with no library, that reports an
// init failure on /runtime/init/error and then hangs: the runner must end it.
package main

import (
	"net/http"
	"os"
	"strings"
)

func main() {
	req, err := http.NewRequest("POST", "http://"+os.Getenv("AWS_LAMBDA_RUNTIME_API")+"/2018-06-01/runtime/init/error",
		strings.NewReader(`{"errorMessage":"cannot load config","errorType":"Runtime.ConfigError"}`))
	if err != nil {
		os.Exit(2)
	}
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigError")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		os.Exit(2)
	}
	select {}
}
