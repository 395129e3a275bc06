package template

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzTranslate: any text, read as a template and translated, gives a
// config or an error, never a panic or a hang.
func FuzzTranslate(f *testing.F) {
	for _, p := range []string{"sam-chat.yaml", "cfn-authorizer.yaml", "sam-websocketapi.yaml", "serverless.yml", "cdk.out/ChatStack.template.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, filepath.Base(p))
	}
	f.Add([]byte("Resources: { A: { Type: AWS::SNS::Topic, Condition: C } }\nConditions: { C: !Equals [!Select [0, !Split [',', !Sub '${AWS::Region},x']], us-east-1] } }"), "t.yaml")
	f.Add([]byte("service: s\nprovider: { name: aws, runtime: x }\ncustom: { a: '${self:custom.${self:custom.b}}', b: a }"), "serverless.yml")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		file, err := Parse(b, name)
		if err != nil {
			return
		}
		res, err := Translate(file, Options{})
		if err != nil {
			return
		}
		if _, err := res.Marshal(name); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
