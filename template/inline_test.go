package template

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInlineCode: Code.ZipFile (an Fn::Join of lines with an Fn::Sub) and
// SAM's InlineCode become index.py and index.js in the function's codeUri,
// written beside the template, and rewritten only when they change.
func TestInlineCode(t *testing.T) {
	f, err := Read(filepath.Join("testdata", "cfn-authorizer.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	res, err := Translate(f, Options{BaseDir: base, Parameters: map[string]string{"Env": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inline) != 1 {
		t.Fatalf("inline code %+v", res.Inline)
	}
	in := res.Inline[0]
	dir := filepath.Join(base, InlineDir, "AuthFunction")
	if in.Function != "AuthFunction" || in.File != "index.py" || in.Dir != dir || res.Config.Functions["AuthFunction"].CodeURI != dir {
		t.Fatalf("inline %+v, function %+v", in, res.Config.Functions["AuthFunction"])
	}
	if want := "import os\ndef handler(event, context):\n    ok = event['headers'].get('Authorization') == 'secret-prod' + os.environ['SECRET_SUFFIX']\n"; !strings.HasPrefix(in.Code, want) {
		t.Fatalf("code %q, want it to start %q", in.Code, want)
	}
	if err := res.WriteInlineCode("/nonexistent"); err != nil { // Dir is absolute: base unused
		t.Fatal(err)
	}
	path := filepath.Join(dir, "index.py")
	got, err := os.ReadFile(path)
	if err != nil || string(got) != in.Code {
		t.Fatalf("index.py %q %v", got, err)
	}
	before, _ := os.Stat(path)
	if err := res.WriteInlineCode(""); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("unchanged code was rewritten")
	}
	res.Inline[0].Code += "# changed\n"
	if err := res.WriteInlineCode(""); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !strings.HasSuffix(string(got), "# changed\n") {
		t.Errorf("changed code not written: %q", got)
	}

	// Relative (import): the directory is taken from the template's.
	f, err = Read(filepath.Join("testdata", "sam-websocketapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = Translate(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inline) != 1 || res.Inline[0].Dir != filepath.Join(InlineDir, "PingFn") || res.Inline[0].File != "index.js" {
		t.Fatalf("inline %+v", res.Inline)
	}
	if err := res.WriteInlineCode(base); err != nil {
		t.Fatal(err)
	}
	got, err = os.ReadFile(filepath.Join(base, InlineDir, "PingFn", "index.js"))
	if err != nil || !strings.Contains(string(got), `body: "pong from us-east-1"`) {
		t.Fatalf("index.js %q %v", got, err)
	}
}

func TestInlineCodeErrors(t *testing.T) {
	route := `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, Target: !Sub "integrations/${Integ2}" } }
  Integ2: { Type: AWS::ApiGatewayV2::Integration, Properties: { ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !GetAtt In.Arn } }`
	cases := []struct{ name, fn, want string }{
		{"handler not in index", `
  In: { Type: AWS::Lambda::Function, Properties: { Runtime: python3.12, Handler: app.handler, Code: { ZipFile: "def handler(e, c): pass" } } }`,
			`Resources.In.Properties.Handler: "app.handler": inline code is in index.py, so the handler is index.<function>`},
		{"runtime without inline code", `
  In: { Type: AWS::Lambda::Function, Properties: { Runtime: java21, Handler: index.handler, Code: { ZipFile: "class X {}" } } }`,
			`Resources.In.Properties.Code.ZipFile: inline code is for Node.js and Python runtimes only, not "java21"`},
		{"InlineCode and CodeUri", `
  In: { Type: AWS::Serverless::Function, Properties: { Runtime: nodejs22.x, Handler: index.handler, CodeUri: src, InlineCode: "exports.handler = 1" } }`,
			"Resources.In.Properties.InlineCode: InlineCode and CodeUri are exclusive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse([]byte(chatBase+route+tc.fn), "template.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Translate(f, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
