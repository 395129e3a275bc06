package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/template"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopMoto()
	os.Exit(code)
}

// mockTemplate is a CloudFormation WebSocket API that needs no function:
// a two-way MOCK route, a stage with variables, and a DynamoDB table.
const mockTemplate = `
Parameters:
  StageName: { Type: String, Default: dev }
  TableName: { Type: String, Default: unused }
Resources:
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: mock, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action }
  Ping:
    Type: AWS::ApiGatewayV2::Route
    Properties: { ApiId: !Ref Api, RouteKey: ping, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${PingInteg}" }
  PingInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { ApiId: !Ref Api, IntegrationType: MOCK, RequestTemplates: { $default: '{"statusCode": 200}' } }
  PingIntegResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties: { ApiId: !Ref Api, IntegrationId: !Ref PingInteg, IntegrationResponseKey: $default, ResponseTemplates: { $default: pong } }
  PingResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties: { ApiId: !Ref Api, RouteId: !Ref Ping, RouteResponseKey: $default }
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref Api, StageName: !Ref StageName, StageVariables: { color: blue } }
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Ref TableName
      AttributeDefinitions: [{ AttributeName: id, AttributeType: S }]
      KeySchema: [{ AttributeName: id, KeyType: HASH }]
      BillingMode: PAY_PER_REQUEST
  Role:
    Type: AWS::IAM::Role
    Properties: { AssumeRolePolicyDocument: {} }
`

func writeTemplate(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "template.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeTemplate runs the real binary on a template: the overridden
// stage is served, the MOCK route answers, and the table is created in
// moto_server.
func TestServeTemplate(t *testing.T) {
	endpoint := testenv.Moto(t)
	// This process's DynamoDB client signs with these, as moto wants.
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	path := writeTemplate(t, mockTemplate)
	// The test binary's moto_server outlives one run of the test
	// (-count=N): a table of a fixed name would be there already, and not
	// "created", at the second run.
	table := fmt.Sprintf("serve_template_%d", time.Now().UnixNano())
	addr, summary := serveTemplate(t, t.TempDir(), "--template", path,
		"--parameter-overrides", "StageName=live TableName="+table, "--dynamodb-endpoint", endpoint)
	for _, want := range []string{"stage live", "route ping -> mock", "table " + table, "created table " + table} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"ping"}`))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := c.ReadMessage(); err != nil || string(b) != "pong" {
		t.Fatalf("ping: %q %v", b, err)
	}
	// The management API accepts the keys wsgate was started with.
	mc, err := client.New(context.Background(), client.Options{EndpointURL: "http://" + addr + "/live", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := mc.ListConnections(context.Background(), 10, "")
	if err != nil || len(page.Connections) != 1 {
		t.Fatalf("listing connections with the environment's keys: %+v, %v", page, err)
	}
	db, err := template.NewDynamoDBClient(context.Background(), endpoint, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)}); err != nil {
		t.Fatalf("table not created: %v", err)
	}
}

// TestImport prints a template's config, and refuses what it cannot run
// naming the logical id and property path.
func TestImport(t *testing.T) {
	path := writeTemplate(t, mockTemplate)
	var out, errb bytes.Buffer
	if code := run([]string{"import", path, "--stage", "dev"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"# not needed locally: Role (AWS::IAM::Role)", "stage: dev", "body: pong", "color: blue"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The printed config is one serve --config accepts.
	cfgPath := writeConfig(t, out.String())
	var chk bytes.Buffer
	if code := run([]string{"serve", "--config", cfgPath, "--check"}, &chk, &chk); code != 0 {
		t.Fatalf("--check of the imported config: %s", chk.String())
	}

	bad := writeTemplate(t, strings.Replace(mockTemplate, "RouteKey: ping,", "RouteKey: ping, ApiKeyRequired: true,", 1))
	out.Reset()
	errb.Reset()
	if code := run([]string{"import", bad}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "Resources.Ping.Properties.ApiKeyRequired") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"import", path, "--parameter-overrides", "NoEquals"}, &out, &errb); code != 2 {
		t.Fatalf("bad override: exit %d, stderr %q", code, errb.String())
	}
}

// serveTemplate starts the real binary with args (serve --template ...),
// stops it when the test ends (logging its output if the test failed), and
// returns its address and what it printed before listening.
func serveTemplate(t *testing.T, dir string, args ...string) (addr, summary string) {
	t.Helper()
	cmd := exec.Command(wsgateBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir // stream checkpoints go here
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("wsgate log:\n%s", stderr.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		summary += sc.Text() + "\n"
		if m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1], summary
		}
	}
	t.Fatalf("wsgate did not start; stdout:\n%s\nstderr:\n%s", summary, stderr.String())
	return "", ""
}
