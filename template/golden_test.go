package template

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgate/wsgate/server"
	"github.com/wsgate/wsgate/streams"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// TestGolden translates each template in testdata to the config checked
// in beside it, and checks that config is one wsgate accepts.
func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		path string
		kind Kind
		opts Options
	}{
		{name: "sam-chat", path: "sam-chat.yaml", kind: KindCloudFormation},
		{name: "sam-chat-overrides", path: "sam-chat.yaml", kind: KindCloudFormation,
			opts: Options{Parameters: map[string]string{"TableName": "chat_local"}, Region: "eu-west-1", AccountID: "123456789012"}},
		{name: "cfn-authorizer", path: "cfn-authorizer.yaml", kind: KindCloudFormation},
		{name: "cfn-authorizer-prod", path: "cfn-authorizer.yaml", kind: KindCloudFormation,
			opts: Options{Parameters: map[string]string{"Env": "prod"}, StackName: "chat"}},
		{name: "sam-websocketapi", path: "sam-websocketapi.yaml", kind: KindSAM,
			opts: Options{DynamoDBEndpoint: "http://127.0.0.1:5055"}},
		{name: "cdk", path: "cdk.out", kind: KindCDK},
		{name: "example-chat-lambda", path: "../../examples/chat-lambda/template.yaml", kind: KindSAM},
		{name: "example-dynamodb-dashboard", path: "../../examples/dynamodb-dashboard/template.yaml", kind: KindSAM,
			opts: Options{DynamoDBEndpoint: "http://127.0.0.1:5055"}},
		{name: "serverless", path: "serverless.yml", kind: KindServerless},
		{name: "serverless-prod", path: "serverless.yml", kind: KindServerless,
			opts: Options{Stage: "prod", Getenv: func(k string) (string, bool) {
				return map[string]string{"CHAT_SECRET": "s3cret"}[k], k == "CHAT_SECRET"
			}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Read(filepath.Join("testdata", tc.path))
			if err != nil {
				t.Fatal(err)
			}
			if f.Kind != tc.kind && !(tc.kind == KindCloudFormation && f.Kind == KindSAM) {
				t.Errorf("kind %s, want %s", f.Kind, tc.kind)
			}
			res, err := Translate(f, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := res.Marshal(filepath.Base(f.Path))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs; got:\n%s", golden, got)
			}
			checkValid(t, res)
			// The printed config is one the server reads (codeUri
			// directories are checked by LoadConfig, not here).
			if _, err := server.ParseConfig(got); err != nil {
				t.Errorf("server.ParseConfig: %v", err)
			}
		})
	}
}

// checkValid validates the translated config as the server would.
func checkValid(t *testing.T, res *Result) {
	t.Helper()
	gc := res.Config.Config
	gc.SetDefaults()
	if err := gc.Validate(); err != nil {
		t.Errorf("translated config does not validate: %v", err)
	}
	if err := streams.ValidateAll(res.Config.Streams); err != nil {
		t.Errorf("translated streams do not validate: %v", err)
	}
	for name, fn := range res.Config.Functions {
		if fn.Runtime == "" || fn.CodeURI == "" || strings.ContainsAny(name, ".:/") {
			t.Errorf("function %s: %+v", name, fn)
		}
	}
}
