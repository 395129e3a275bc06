package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/client"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/template"
)

// TestServeTemplateChat runs testdata/chat-template unmodified: Python
// handlers (boto3) keep connection ids in a DynamoDB table in moto_server
// and broadcast through the management API; a Node.js handler answers the
// two-way $default route. Two real clients connect, one broadcasts, both
// receive; a disconnect removes its row.
func TestServeTemplateChat(t *testing.T) {
	dir, endpoint := templateApp(t, "chat-template", "node")
	table := "chat_e2e_" + time.Now().UTC().Format("150405.000000")
	addr, _ := serveTemplate(t, t.TempDir(), "--template", dir, "--parameter-overrides", "TableName="+table, "--dynamodb-endpoint", endpoint)
	db, err := template.NewDynamoDBClient(context.Background(), endpoint, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	rows := func(want int) func() error {
		return func() error {
			out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(table)})
			if err != nil {
				return err
			}
			if len(out.Items) != want {
				return fmt.Errorf("%d connection rows, want %d", len(out.Items), want)
			}
			return nil
		}
	}
	dial := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/Prod", nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		return c
	}
	a, b := dial(), dial()
	defer b.Close()
	testenv.Eventually(t, 60*time.Second, rows(2))
	read := func(c *websocket.Conn) string {
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, m, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(m)
	}
	if err := a.WriteMessage(websocket.TextMessage, []byte(`{"action":"sendmessage","data":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(a); got != "hello" {
		t.Errorf("sender got %q", got)
	}
	if got := read(b); got != "hello" {
		t.Errorf("other client got %q", got)
	}
	if err := b.WriteMessage(websocket.TextMessage, []byte(`{"action":"other"}`)); err != nil {
		t.Fatal(err)
	}
	if got := read(b); got != `echo:{"action":"other"}` {
		t.Errorf("$default (Node.js) answered %q", got)
	}
	a.Close()
	testenv.Eventually(t, 60*time.Second, rows(1))
}

// TestServeTemplateStream: a template whose table streams to a function
// delivers the table's changes to it (here the function posts each order
// to the connection the order names), filtered by the event's
// FilterCriteria: a draft order is not delivered.
func TestServeTemplateStream(t *testing.T) {
	dir, endpoint := templateApp(t, "stream-template")
	table := "orders_e2e_" + time.Now().UTC().Format("150405.000000")
	addr, _ := serveTemplate(t, t.TempDir(), "--template", dir, "--parameter-overrides", "OrdersTableName="+table, "--dynamodb-endpoint", endpoint)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mc, err := client.New(context.Background(), client.Options{EndpointURL: "http://" + addr + "/live", Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := mc.ListConnections(context.Background(), 10, "")
	if err != nil || len(page.Connections) != 1 {
		t.Fatalf("connections: %+v %v", page, err)
	}
	db, err := template.NewDynamoDBClient(context.Background(), endpoint, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][2]string{{"o0", "draft"}, {"o1", "paid"}} {
		_, err = db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
			"id": &types.AttributeValueMemberS{Value: order[0]}, "status": &types.AttributeValueMemberS{Value: order[1]},
			"notify": &types.AttributeValueMemberS{Value: page.Connections[0].ConnectionID},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	// In order per shard: had the draft passed the filter, it would come
	// first.
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, m, err := c.ReadMessage()
	if err != nil || string(m) != "INSERT o1" {
		t.Fatalf("stream delivery: %q %v", m, err)
	}
}

// templateApp prepares an end-to-end template test: it needs python3 with
// boto3 and the other programs named, starts moto_server, gives this process moto's
// credentials (the serve process inherits them), and copies
// testdata/NAME to a temporary directory.
func templateApp(t *testing.T, name string, programs ...string) (dir, endpoint string) {
	t.Helper()
	for _, p := range append(programs, "python3") {
		pkg := p
		if p == "node" {
			pkg = "nodejs"
		}
		testenv.LookPath(t, p, "apt-get install "+pkg)
	}
	if err := exec.Command("python3", "-c", "import boto3").Run(); err != nil {
		testenv.Missing(t, "boto3 for python3", "pip install boto3")
	}
	endpoint = testenv.Moto(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir = filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	return dir, endpoint
}

// inlineTemplate has two functions whose code is in the template: Python
// in Code.ZipFile (an Fn::Join of lines, as CloudFormation templates write
// it) and Node.js in SAM's InlineCode.
const inlineTemplate = `
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::WebSocketApi
    Properties:
      StageName: live
      Routes:
        py: { FunctionArn: !GetAtt PyFn.Arn, RouteResponseSelectionExpression: $default }
        node: { FunctionArn: !GetAtt NodeFn.Arn, RouteResponseSelectionExpression: $default }
  PyFn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Code:
        ZipFile: !Join
          - "\n"
          - - "import json"
            - "def handler(event, context):"
            - "    return {'statusCode': 200, 'body': 'py:' + json.loads(event['body'])['action'] + ':' + __file__.rsplit('/', 1)[1]}"
  NodeFn:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: nodejs22.x
      Handler: index.handler
      InlineCode: |
        exports.handler = async (event) => ({ statusCode: 200, body: "node:" + JSON.parse(event.body).action + ":" + require("path").basename(__filename) });
`

// TestServeTemplateInline: functions with inline code run from the files
// Lambda would name (index.py, index.js), written beside the template;
// wsgate import writes them too, so its config serves on its own.
func TestServeTemplateInline(t *testing.T) {
	testenv.LookPath(t, "node", "apt-get install nodejs")
	testenv.LookPath(t, "python3", "apt-get install python3")
	path := writeTemplate(t, inlineTemplate)
	addr, summary := serveTemplate(t, t.TempDir(), "--template", path)
	if !strings.Contains(summary, filepath.Join(filepath.Dir(path), template.InlineDir, "PyFn")) {
		t.Errorf("summary does not show where PyFn's code is:\n%s", summary)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for route, want := range map[string]string{"py": "py:py:index.py", "node": "node:node:index.js"} {
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"action":"`+route+`"}`))
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil || string(b) != want {
			t.Fatalf("%s answered %q %v, want %q", route, b, err, want)
		}
	}

	// import: the printed config names the files, which it wrote.
	fresh := writeTemplate(t, inlineTemplate)
	var out, errb bytes.Buffer
	if code := run([]string{"import", fresh}, &out, &errb); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "# inline code of NodeFn (Resources.NodeFn.Properties.InlineCode): written to .wsgate/inline/NodeFn/index.js") {
		t.Errorf("import output:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(fresh), ".wsgate", "inline", "NodeFn", "index.js")); err != nil {
		t.Fatalf("import did not write the inline code: %v", err)
	}
	cfgPath := filepath.Join(filepath.Dir(fresh), "wsgate.yaml")
	if err := os.WriteFile(cfgPath, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var chk bytes.Buffer
	if code := run([]string{"serve", "--config", cfgPath, "--check"}, &chk, &chk); code != 0 {
		t.Fatalf("--check of the imported config: %s", chk.String())
	}
}
