package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsgate/wsgate/examples/internal/exampletest"
	"github.com/wsgate/wsgate/integration"
	"github.com/wsgate/wsgate/internal/dashboardtest"
	"github.com/wsgate/wsgate/internal/testenv"
	"github.com/wsgate/wsgate/server"
)

// buildDir holds bin/ with the stream handler and chat-lambda's connection
// handlers, built once for the test binary.
var buildDir string

func TestMain(m *testing.M) {
	exampletest.Main(m, &buildDir, "./stream-handler", "../chat-lambda/onconnect", "../chat-lambda/ondisconnect")
}

// TestDashboard runs wsgate.yaml: onconnect registers a WebSocket client
// and the page in the connections table, and a PutItem on orders reaches
// both through wsgate's dynamodb source, the aws-lambda-go stream handler
// (command target) and PostToConnection.
func TestDashboard(t *testing.T) {
	moto := exampletest.Moto(t)
	cfg := loadConfig(t, "wsgate.yaml", moto)
	db := exampletest.DynamoDB(moto)
	exampletest.CreateTable(t, db, cfg.Streams[0].Source.Table, "id", true)
	exampletest.CreateTable(t, db, cfg.Routes["$connect"].Integration.Env["TABLE_NAME"], "connectionId", false)
	srv := exampletest.Start(t, cfg)
	client := exampletest.Dial(t, srv, cfg.Stage)
	page := openPage(t, srv, cfg.Stage)

	putOrder(t, db, cfg.Streams[0].Source.Table)

	var got struct {
		EventName string
		Keys      map[string]any
		NewImage  map[string]any
	}
	msg := exampletest.Read(t, client)
	if err := json.Unmarshal([]byte(msg), &got); err != nil {
		t.Fatalf("message %q: %v", msg, err)
	}
	if got.EventName != "INSERT" || got.Keys["id"] != "o-1" || got.NewImage["item"] != "coffee" || got.NewImage["qty"] != 2.0 {
		t.Fatalf("message %s, want the INSERT of order o-1 (coffee, qty 2)", msg)
	}
	waitText(t, page, "rows", `o-1	{"item":"coffee","qty":2}	INSERT`)
}

// TestDashboardGroups runs wsgate-groups.yaml: no handlers, the client
// joins group "dashboard" at $connect and wsgate publishes the stream
// record to it.
func TestDashboardGroups(t *testing.T) {
	moto := exampletest.Moto(t)
	cfg := loadConfig(t, "wsgate-groups.yaml", moto)
	db := exampletest.DynamoDB(moto)
	exampletest.CreateTable(t, db, cfg.Streams[0].Source.Table, "id", true)
	srv := exampletest.Start(t, cfg)
	client := exampletest.Dial(t, srv, cfg.Stage)
	page := openPage(t, srv, cfg.Stage)

	putOrder(t, db, cfg.Streams[0].Source.Table)

	var got struct {
		EventName string
		DynamoDB  struct {
			NewImage map[string]map[string]string
		}
	}
	msg := exampletest.Read(t, client)
	if err := json.Unmarshal([]byte(msg), &got); err != nil {
		t.Fatalf("message %q: %v", msg, err)
	}
	if got.EventName != "INSERT" || got.DynamoDB.NewImage["id"]["S"] != "o-1" || got.DynamoDB.NewImage["qty"]["N"] != "2" {
		t.Fatalf("message %s, want the stream record of order o-1's INSERT", msg)
	}
	waitText(t, page, "rows", `o-1	{"item":"coffee","qty":2}	INSERT`)
}

// openPage opens index.html in headless Chromium, pointed at srv, and
// waits until its WebSocket is open (and $connect has run for it).
func openPage(t *testing.T, srv *server.Server, stage string) context.Context {
	t.Helper()
	abs, err := filepath.Abs("index.html")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := dashboardtest.Open(t, "file://"+abs+"?ws="+url.QueryEscape("ws://"+srv.Addr()+"/"+stage))
	waitText(t, page, "status", "live")
	return page
}

// waitText waits until the page element id shows want.
func waitText(t *testing.T, page context.Context, id, want string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() error {
		got, err := dashboardtest.Eval[string](page, "document.getElementById("+strconv.Quote(id)+").innerText")
		if err != nil {
			return err
		}
		if strings.TrimSpace(got) != want {
			return fmt.Errorf("#%s shows %q, want %q", id, got, want)
		}
		return nil
	})
}

// loadConfig reads an example config and points it at moto and the built
// programs, with the tables named after the test (the tests share moto).
// The stream starts at TRIM_HORIZON, so a change made before the
// source first polls (the table is new) is still delivered, and its
// checkpoint goes to a temporary directory.
func loadConfig(t *testing.T, path, moto string) *server.Config {
	t.Helper()
	cfg := exampletest.LoadConfig(t, path)
	for _, r := range cfg.Routes {
		pointAt(t, r.Integration, moto)
	}
	for i := range cfg.Streams {
		s := &cfg.Streams[i]
		s.Source.Table += "-" + t.Name()
		s.Source.Endpoint = moto
		s.Source.StartingPosition = "TRIM_HORIZON"
		s.Source.Checkpoint = filepath.Join(t.TempDir(), "checkpoint.json")
		pointAt(t, s.Target.Integration, moto)
	}
	return cfg
}

// pointAt runs a command integration's ./bin/... from buildDir, against
// moto and the test's own connections table.
func pointAt(t *testing.T, ic *integration.Config, moto string) {
	if ic == nil || ic.Type != "command" {
		return
	}
	ic.Dir = buildDir
	ic.Env["AWS_ENDPOINT_URL_DYNAMODB"] = moto
	// The routes' env may be one map (a YAML alias): suffix it once.
	suffix := "-" + t.Name()
	ic.Env["TABLE_NAME"] = strings.TrimSuffix(ic.Env["TABLE_NAME"], suffix) + suffix
}

// putOrder writes order o-1, as the shop's backend would.
func putOrder(t *testing.T, db *dynamodb.Client, table string) {
	t.Helper()
	_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(table),
		Item: map[string]types.AttributeValue{
			"id":   &types.AttributeValueMemberS{Value: "o-1"},
			"item": &types.AttributeValueMemberS{Value: "coffee"},
			"qty":  &types.AttributeValueMemberN{Value: "2"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}
