package server_test

import (
	"math"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/wsgate/wsgate/internal/confcheck"
	"github.com/wsgate/wsgate/server"
)

// everyBlock is a valid config that has every block with numeric fields:
// the gateway, an authorizer, a route integration, a stream's source and
// target and the target's integration.
const everyBlock = `
listen: "127.0.0.1:0"
heapFloorMiB: 64
credentials: [{ accessKeyId: AKID, secretAccessKey: secret }]
throttling: { rateLimit: 100, burstLimit: 50 }
connectionThrottling: { rateLimit: 500, burstLimit: 500 }
authorizer:
  integration: { type: mock }
  identitySource: ["route.request.header.Authorization"]
routes:
  "$default": { integration: { type: command, command: ["./handler"] }, throttling: { rateLimit: 0.5, burstLimit: 1 } }
streams:
  - source: { type: sqlite, path: app.db, tables: [orders] }
    target: { integration: { type: mock } }
admin: { listen: "127.0.0.1:0" }
accessLog: { format: "$context.requestId", bufferLines: 10 }
apiKeys: [{ name: k, value: "0123456789abcdefghij" }]
usagePlans: [{ name: p, apiKeys: [k], throttle: { rateLimit: 1, burstLimit: 1 }, quota: { limit: 10, period: WEEK, offset: 1 } }]
`

// intField is one integer (or float) field of a parsed config and how to
// set it.
type intField struct {
	path  string
	set   func(int64)
	float bool
}

// intFields finds every integer field (and *int) below v, named by its
// path in the file. commit writes a changed copy back (map values are not
// addressable). Other numeric kinds fail the test: extend it for them.
func intFields(t *testing.T, v reflect.Value, path string, commit func(), out *[]intField) {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		*out = append(*out, intField{path, func(n int64) { v.SetInt(n); commit() }, false})
	case reflect.Float64:
		*out = append(*out, intField{path, func(n int64) { v.SetFloat(float64(n)); commit() }, true})
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32:
		t.Errorf("%s is a %s: teach this test (and Validate) about it", path, v.Kind())
	case reflect.Pointer:
		if v.Type().Elem().Kind() == reflect.Int {
			*out = append(*out, intField{path, func(n int64) {
				p := reflect.New(v.Type().Elem())
				p.Elem().SetInt(n)
				v.Set(p)
				commit()
			}, false})
		} else if !v.IsNil() {
			intFields(t, v.Elem(), path, commit, out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			p := path
			if !f.Anonymous {
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				p = confcheck.Field(path, name)
			}
			intFields(t, v.Field(i), p, commit, out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			intFields(t, v.Index(i), confcheck.Index(path, i), commit, out)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			cp := reflect.New(v.Type().Elem()).Elem()
			cp.Set(v.MapIndex(k))
			intFields(t, cp, confcheck.Key(path, k.String()), func() { v.SetMapIndex(k, cp); commit() }, out)
		}
	}
}

// clusterBlock is a valid cluster: block, walked on its own (one node
// config cannot hold every block's example at once: everyBlock has no
// cluster).
const clusterBlock = `
cluster:
  node: { id: 3, name: n3 }
  nats: { embedded: { listen: "127.0.0.1:0", clusterListen: "127.0.0.1:0" } }
`

func parseBlock(t *testing.T, text string) (*server.Config, []intField) {
	t.Helper()
	var c server.Config
	if err := yaml.UnmarshalStrict([]byte(text), &c); err != nil {
		t.Fatal(err)
	}

	var fields []intField
	intFields(t, reflect.ValueOf(&c).Elem(), "", func() {}, &fields)
	return &c, fields
}

// TestEveryNumberIsRangeChecked sets each integer field of every config
// block, one at a time, to the largest and the smallest int: Validate must
// refuse each, naming the field's path. (idleTimeoutSeconds above about
// 9.2 billion used to pass --check, then wrap negative and close every
// connection at once.) Each field must also be documented.
func TestEveryNumberIsRangeChecked(t *testing.T) {
	checkEveryNumber(t, everyBlock, []string{"heapFloorMiB", "idleTimeoutSeconds", "maxConnectionSeconds", "sendBufferBytes",
		`routes["$default"].integration.timeoutMillis`, `routes["$default"].integration.memorySizeMB`,
		"authorizer.resultTtlSeconds", "authorizer.integration.concurrency",
		"streams[0].source.pollMillis", "streams[0].target.batchSize", "streams[0].target.integration.timeoutMillis",
		"accessLog.bufferLines", "usagePlans[0].quota.offset", "usagePlans[0].throttle.burstLimit"})
	checkEveryNumber(t, clusterBlock, []string{"cluster.requestTimeoutMillis", "cluster.groupLingerSeconds", "cluster.leaseSeconds", "cluster.streamLeaseSeconds", "cluster.isolationSeconds", "cluster.dedupeSeconds"})
}

func checkEveryNumber(t *testing.T, text string, wantPaths []string) {
	c, fields := parseBlock(t, text)
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("the base config is invalid: %v", err)
	}
	var paths []string
	for _, f := range fields {
		paths = append(paths, f.path)
	}
	for _, want := range wantPaths {
		if !strings.Contains(strings.Join(paths, " "), want) {
			t.Fatalf("the walk missed %s; found %v", want, paths)
		}
	}
	docs, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fields {
		leaf := f.path[strings.LastIndex(f.path, ".")+1:]
		if !strings.Contains(string(docs), "`"+leaf+"`") {
			t.Errorf("%s is not in docs/configuration.md", f.path)
		}
		for _, v := range []int64{math.MaxInt64, math.MinInt64, 9300000000} {
			c, fields := parseBlock(t, text)
			fields[i].set(v)
			c.SetDefaults()
			err := c.Validate()
			want := regexp.MustCompile(`(^|\n)` + regexp.QuoteMeta(f.path) + `: must be between -?\d+ and \d+, got -?\d+(\n|$)`)
			if f.float { // %g: 1e+06; a negative rate is "must be above 0"
				want = regexp.MustCompile(`(^|\n)` + regexp.QuoteMeta(f.path) + `: must be (between \S+ and \S+|above 0 \(.*\)), got \S+(\n|$)`)
			}
			if err == nil || !want.MatchString(err.Error()) {
				t.Errorf("%s = %d: Validate() = %v, want %q: must be between ...", f.path, v, err, f.path)
			}
		}
	}
}

// TestRangeMessages checks the shape of the errors a user sees.
func TestRangeMessages(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"idle timeout from the issue", "idleTimeoutSeconds: 9300000000\n", "idleTimeoutSeconds: must be between 1 and 604800, got 9300000000"},
		{"connection", "maxConnectionSeconds: 9300000000\n", "maxConnectionSeconds: must be between 1 and 604800, got 9300000000"},
		{"route integration", "routes:\n  $default: { integration: { type: mock, timeoutMillis: 10 } }\n",
			`routes["$default"].integration.timeoutMillis: must be between 50 and 900000, got 10`},
		{"stream", "streams:\n  - source: { type: sqlite, path: a.db, tables: [t], pollMillis: -1 }\n    target: { group: g }\n",
			"streams[0].source.pollMillis: must be between 0 and 3600000, got -1"},
		{"nested message", "routes:\n  x: { integration: { type: http } }\n", `routes["x"].integration.uri: required for an http integration`},
		{"heap floor", "heapFloorMiB: -1\n", "heapFloorMiB: must be between 0 and 1048576, got -1"},
		{"several at once", "slowConsumerSeconds: -1\nwriteTimeoutSeconds: 99999\n", "slowConsumerSeconds: must be between 1 and 3600, got -1\nwriteTimeoutSeconds: must be between 1 and 3600, got 99999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := server.ParseConfig([]byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The largest accepted values parse.
	if _, err := server.ParseConfig([]byte("idleTimeoutSeconds: 604800\nmaxConnectionSeconds: 604800\nsendBufferBytes: 1073741824\n")); err != nil {
		t.Fatal(err)
	}
}

// TestStreamsInCluster: a cluster config may have streams (each runs on
// one node under a lease); runOn names nodes, so it needs a cluster block.
func TestStreamsInCluster(t *testing.T) {
	stream := `
streams:
  - source: { type: sqlite, path: app.db, tables: [orders] }
    target: { group: orders }
    runOn: [n3]
`
	if _, err := server.ParseConfig([]byte(clusterBlock + stream)); err != nil {
		t.Fatalf("cluster with a stream: %v", err)
	}
	_, err := server.ParseConfig([]byte(stream))
	if err == nil || !strings.Contains(err.Error(), "streams[0].runOn") {
		t.Fatalf("runOn without a cluster: %v, want an error naming streams[0].runOn", err)
	}
	_, err = server.ParseConfig([]byte(clusterBlock + strings.Replace(stream, "[n3]", `[""]`, 1)))
	if err == nil || !strings.Contains(err.Error(), "streams[0].runOn[0]") {
		t.Fatalf("an empty node name in runOn: %v", err)
	}
}

// TestStreamGraceFitsShutdownTimeout: a stream's deliverGraceSeconds
// (default 5) must be less than shutdownTimeoutSeconds, or the config is
// refused, naming the stream's field; a grace out of its own range is
// reported by its range check alone.
func TestStreamGraceFitsShutdownTimeout(t *testing.T) {
	const field = "streams[1].source.deliverGraceSeconds"
	for _, tc := range []struct {
		name, shutdown, grace, want string
	}{
		{"defaults", "", "", ""},
		{"default grace, timeout 6", "shutdownTimeoutSeconds: 6\n", "", ""},
		{"default grace, timeout 5", "shutdownTimeoutSeconds: 5\n", "", field + ": 5 (the default) must be less than shutdownTimeoutSeconds (5): "},
		{"grace 29", "", "29", ""},
		{"grace 30", "", "30", field + ": 30 must be less than shutdownTimeoutSeconds (30): "},
		{"grace 60, timeout 20", "shutdownTimeoutSeconds: 20\n", "60", field + ": 60 must be less than shutdownTimeoutSeconds (20): "},
		{"grace 0, timeout 1", "shutdownTimeoutSeconds: 1\n", "0", ""},
		{"grace out of range", "shutdownTimeoutSeconds: 20\n", "61", field + ": must be between 0 and 60, got 61"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grace := ""
			if tc.grace != "" {
				grace = ", deliverGraceSeconds: " + tc.grace
			}
			text := tc.shutdown + `
streams:
  - source: { type: sqlite, path: a.db, tables: [orders], deliverGraceSeconds: 0 }
    target: { group: orders }
  - source: { type: sqlite, path: b.db, tables: [items]` + grace + ` }
    target: { group: items }
`
			_, err := server.ParseConfig([]byte(text))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseConfig: %v", err)
			case tc.want == "":
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("ParseConfig = %v, want %q", err, tc.want)
			case strings.Contains(err.Error(), "\n"):
				t.Fatalf("ParseConfig = %v: one problem expected, for %s", err, field)
			}
		})
	}
}
