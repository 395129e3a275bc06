package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopMoto()
	os.Exit(code)
}

// awsServicesConfig sends messages straight to AWS services, with no
// Lambda, as AWS's published WebSocket patterns do: the requests are built
// from the templates and requestParameters users copy from them.
const awsServicesConfig = `
listen: "127.0.0.1:0"
apiId: local
stage: dev
routeSelectionExpression: "$request.body.action"
routes:
  sqs:
    integration:
      type: aws
      uri: "arn:aws:apigateway:us-east-1:sqs:path/123456789012/wsgate-in"
      credentialsArn: "arn:aws:iam::123456789012:role/apigw-sqs"
      requestParameters:
        integration.request.header.Content-Type: "'application/x-www-form-urlencoded'"
      requestTemplates:
        "$default": "Action=SendMessage&MessageBody=$util.urlEncode($input.json('$.text'))"
      integrationResponses:
        "/2\\d\\d/":
          responseTemplates: { "$default": "queued #if($input.body.contains('<MessageId>'))ok#end" }
        "$default":
          responseTemplates: { "$default": "sqs said $context.status" }
    routeResponseSelectionExpression: "$default"
  sns:
    integration:
      type: aws
      uri: "arn:aws:apigateway:us-east-1:sns:action/Publish"
      requestParameters:
        integration.request.querystring.TopicArn: "stageVariables.topic"
        integration.request.header.Content-Type: "'application/x-www-form-urlencoded'"
      requestTemplates:
        "$default": "Message=$util.urlEncode($input.body)"
      integrationResponses: { "$default": {} }
    routeResponseSelectionExpression: "$default"
  put:
    integration:
      type: aws
      uri: "arn:aws:apigateway:us-east-1:dynamodb:action/PutItem"
      requestTemplates:
        "$default": |
          {"TableName": "wsgate-conns",
           "Item": {"id": {"S": "$context.connectionId"}, "text": {"S": "$util.escapeJavaScript($input.path('$.text'))"}}}
      integrationResponses:
        "200": { responseTemplates: { "$default": "stored $context.connectionId" } }
        "/4\\d\\d/": { responseTemplates: { "$default": "$input.path('$.__type')" } }
    routeResponseSelectionExpression: "$default"
  start:
    integration:
      type: aws
      uri: "arn:aws:apigateway:us-east-1:states:action/StartExecution"
      requestTemplates:
        "$default": |
          #set($input = $input.json('$'))
          {"input": "$util.escapeJavaScript($input).replaceAll("\\'", "'")", "stateMachineArn": "$stageVariables.machine"}
      integrationResponses:
        "$default": { responseTemplates: { "$default": "#if($input.path('$.executionArn').startsWith('arn:aws:states:'))started#end" } }
    routeResponseSelectionExpression: "$default"
  record:
    integration:
      type: aws
      uri: "arn:aws:apigateway:us-east-1:kinesis:action/PutRecord"
      requestTemplates:
        "$default": '{"StreamName": "wsgate-stream", "Data": "$util.base64Encode($input.body)", "PartitionKey": "$context.connectionId"}'
      integrationResponses:
        "$default": { responseTemplates: { "$default": "$input.path('$.ShardId')" } }
    routeResponseSelectionExpression: "$default"
  event:
    integration:
      type: aws
      uri: "arn:aws:apigateway:us-east-1:events:action/PutEvents"
      requestTemplates:
        "$default": |
          {"Entries": [{"Source": "wsgate", "DetailType": "message", "Detail": "$util.escapeJavaScript($input.body)", "EventBusName": "default"}]}
      integrationResponses:
        "$default": { responseTemplates: { "$default": "failed $input.path('$.FailedEntryCount')" } }
    routeResponseSelectionExpression: "$default"
stageVariables:
  topic: "arn:aws:sns:us-east-1:123456789012:wsgate-topic"
  machine: "arn:aws:states:us-east-1:123456789012:stateMachine:wsgate-machine"
`

// awsSetup creates the queues, topic, table, state machine and stream the
// config names, with boto3.
const awsSetup = `
import boto3
sqs = boto3.client("sqs")
q = sqs.create_queue(QueueName="wsgate-in")["QueueUrl"]
sink = sqs.create_queue(QueueName="wsgate-sns-sink")["QueueUrl"]
sink_arn = sqs.get_queue_attributes(QueueUrl=sink, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns = boto3.client("sns")
topic = sns.create_topic(Name="wsgate-topic")["TopicArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sink_arn, Attributes={"RawMessageDelivery": "true"})
boto3.client("dynamodb").create_table(TableName="wsgate-conns", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
boto3.client("stepfunctions").create_state_machine(name="wsgate-machine",
    roleArn="arn:aws:iam::123456789012:role/sfn",
    definition='{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}')
boto3.client("kinesis").create_stream(StreamName="wsgate-stream", ShardCount=1)
`

// awsTeardown removes what awsSetup made: the test binary's moto_server
// outlives one run of the test (-count=N), whose setup would find them.
const awsTeardown = `
import boto3
sqs = boto3.client("sqs")
for name in ("wsgate-in", "wsgate-sns-sink"):
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"])
boto3.client("sns").delete_topic(TopicArn="arn:aws:sns:us-east-1:123456789012:wsgate-topic")
boto3.client("dynamodb").delete_table(TableName="wsgate-conns")
boto3.client("stepfunctions").delete_state_machine(stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:wsgate-machine")
boto3.client("kinesis").delete_stream(StreamName="wsgate-stream")
`

// awsCheck prints what reached the services as JSON.
const awsCheck = `
import boto3, json, sys
sqs = boto3.client("sqs")
def recv(name):
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
item = boto3.client("dynamodb").get_item(TableName="wsgate-conns", Key={"id": {"S": sys.argv[1]}}).get("Item", {})
sfn = boto3.client("stepfunctions")
m = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
ex = sfn.list_executions(stateMachineArn=m)["executions"]
inp = sfn.describe_execution(executionArn=ex[0]["executionArn"])["input"] if ex else None
print(json.dumps({"sqs": recv("wsgate-in"), "sns": recv("wsgate-sns-sink"), "item": item.get("text", {}).get("S"), "execution": inp}))
`

func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := exec.Command("python3", append([]string{"-c", script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

func TestAWSServiceIntegrations(t *testing.T) {
	endpoint := testenv.Moto(t)
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		t.Setenv(k, v)
	}
	python(t, awsSetup)
	t.Cleanup(func() { python(t, awsTeardown) })
	srv := startServer(t, awsServicesConfig)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr()+"/dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	id := onlyConnection(t, srv)

	ask := func(msg string) string {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		return read(t, c)
	}
	answers := []struct{ msg, want string }{
		{`{"action":"sqs","text":"to the queue & back"}`, "queued ok"},
		{`{"action":"put","text":"say \"hi\""}`, "stored " + id},
		{`{"action":"start","who":"it's me"}`, "started"},
		{`{"action":"record","n":1}`, "shardId-000000000000"},
		{`{"action":"event","n":1}`, "failed 0"},
	}
	for _, a := range answers {
		if got := ask(a.msg); got != a.want {
			t.Errorf("%s answered %q, want %q", a.msg, got, a.want)
		}
	}
	// An integration response without templates: the service's answer
	// passes through to the two-way route's client.
	if got := ask(`{"action":"sns","text":"fan out"}`); !strings.Contains(got, "<PublishResponse") {
		t.Errorf("sns answered %q, want moto's PublishResponse", got)
	}

	var seen struct {
		SQS, SNS  []string
		Item      string
		Execution string
	}
	if err := json.Unmarshal([]byte(python(t, awsCheck, id)), &seen); err != nil {
		t.Fatal(err)
	}
	if len(seen.SQS) != 1 || seen.SQS[0] != `"to the queue & back"` {
		t.Errorf("queue holds %q, want the message text", seen.SQS)
	}
	if len(seen.SNS) != 1 || seen.SNS[0] != `{"action":"sns","text":"fan out"}` {
		t.Errorf("topic's queue holds %q, want the message", seen.SNS)
	}
	if seen.Item != `say "hi"` {
		t.Errorf("table item text %q", seen.Item)
	}
	if seen.Execution != `{"action":"start","who":"it's me"}` {
		t.Errorf("execution input %q", seen.Execution)
	}
}
