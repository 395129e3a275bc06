package template

import (
	"strings"
	"testing"
)

// TestStageThrottling: a v2 stage's DefaultRouteSettings become the
// stage's throttling and its RouteSettings a route's, the half a setting
// leaves out taking AWS's account-level value; what wsgate cannot honour
// is refused or warned about by path.
func TestStageThrottling(t *testing.T) {
	src := chatBase + `
  R: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: send, Target: !Sub "integrations/${Integ}" } }
  D: { Type: AWS::ApiGatewayV2::Route, Properties: { ApiId: !Ref Api, RouteKey: $disconnect, Target: !Sub "integrations/${Integ}" } }
  S:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: !Ref Api
      StageName: prod
      DefaultRouteSettings: { ThrottlingBurstLimit: 50, ThrottlingRateLimit: 100, DetailedMetricsEnabled: true }
      RouteSettings:
        send: { ThrottlingRateLimit: "2.5" }
        $disconnect: { ThrottlingBurstLimit: 1 }
`
	f, err := Parse([]byte(src), "template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Translate(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Config
	if th := cfg.Throttling; th == nil || th.RateLimit != 100 || th.BurstLimit != 50 {
		t.Fatalf("stage throttling %+v", th)
	}
	if th := cfg.Routes["send"].Throttling; th == nil || th.RateLimit != 2.5 || th.BurstLimit != 5000 {
		t.Fatalf("route throttling %+v", th)
	}
	if cfg.Routes["$disconnect"].Throttling != nil || !strings.Contains(strings.Join(res.Warnings, "\n"), "RouteSettings.$disconnect: wsgate never throttles $disconnect") {
		t.Fatalf("$disconnect: %+v, warnings %q", cfg.Routes["$disconnect"].Throttling, res.Warnings)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct{ settings, want string }{
		"unknown route": {`RouteSettings: { nope: { ThrottlingBurstLimit: 1 } }`, `Resources.S.Properties.RouteSettings.nope: no route "nope"`},
		"zero":          {`DefaultRouteSettings: { ThrottlingRateLimit: 0 }`, `Resources.S.Properties.DefaultRouteSettings.ThrottlingRateLimit: 0: wsgate needs a number above 0`},
		"fractional":    {`DefaultRouteSettings: { ThrottlingBurstLimit: 1.5 }`, `ThrottlingBurstLimit: 1.5: want an integer`},
	} {
		t.Run(name, func(t *testing.T) {
			src := chatBase + "\n  S: { Type: AWS::ApiGatewayV2::Stage, Properties: { ApiId: !Ref Api, StageName: prod, " + tc.settings + " } }\n"
			f, err := Parse([]byte(src), "template.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Translate(f, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
