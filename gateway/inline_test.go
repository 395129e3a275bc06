package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/integration"
)

// TestInline: the gateway lets the front serve on its accepting
// goroutine only the upgrades that wait on nothing: not with a $connect
// route, an authorizer, IAM or API keys, and no management call.
func TestInline(t *testing.T) {
	newGW := func(mod func(*gateway.Config)) *gateway.Gateway {
		cfg := baseConfig()
		if mod != nil {
			mod(&cfg)
		}
		gw, err := gateway.New(cfg, gateway.Options{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return gw
	}
	req := func(method, target string) *http.Request { return httptest.NewRequest(method, target, nil) }
	bare := newGW(nil)
	for _, c := range []struct {
		r    *http.Request
		want bool
	}{
		{req(http.MethodGet, "/dev"), true},
		{req(http.MethodGet, "/dev/"), true},
		{req(http.MethodGet, "/dev?token=x"), true},
		{req(http.MethodGet, "/other"), false},
		{req(http.MethodGet, "/dev/@connections/abc"), false},
		{req(http.MethodPost, "/dev"), false},
		{req(http.MethodPost, "/dev/@connections/abc"), false},
	} {
		if got := bare.Inline(c.r); got != c.want {
			t.Errorf("%s %s: Inline %v, want %v", c.r.Method, c.r.URL, got, c.want)
		}
	}
	route := gateway.Route{Integration: &integration.Config{Type: "http", URI: "http://127.0.0.1:1/connect"}}
	for name, mod := range map[string]func(*gateway.Config){
		"$connect": func(c *gateway.Config) { c.Routes["$connect"] = route },
		"authorizer": func(c *gateway.Config) {
			c.Authorizer = &gateway.AuthorizerConfig{Integration: route.Integration, IdentitySource: []string{"route.request.header.Authorization"}}
		},
		"AWS_IAM": func(c *gateway.Config) { c.AuthorizationType = "AWS_IAM" },
		"apiKeys": func(c *gateway.Config) {
			c.APIKeys = []gateway.APIKey{{Name: "k", Value: "0123456789abcdefghij0123456789"}}
		},
	} {
		if newGW(mod).Inline(req(http.MethodGet, "/dev")) {
			t.Errorf("with %s: an upgrade served inline", name)
		}
	}
}
