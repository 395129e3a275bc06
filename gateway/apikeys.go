package gateway

import (
	"net/http"

	"github.com/wsgate/wsgate/internal/confcheck"
)

// The API key selection expressions API Gateway accepts.
const (
	apiKeyFromHeader     = "$request.header.x-api-key"
	apiKeyFromAuthorizer = "$context.authorizer.usageIdentifierKey"
)

func (c *Config) validateAPIKeys(e *confcheck.Errors) {
	switch c.APIKeySelectionExpression {
	case "", apiKeyFromHeader, apiKeyFromAuthorizer:
	default:
		e.Addf("apiKeySelectionExpression", "%q: want %s or %s", c.APIKeySelectionExpression, apiKeyFromHeader, apiKeyFromAuthorizer)
	}
	if c.APIKeySelectionExpression == apiKeyFromAuthorizer && c.Authorizer == nil {
		e.Addf("apiKeySelectionExpression", "%s needs an authorizer", apiKeyFromAuthorizer)
	}
	c.validateUsagePlans(e)
	values := map[string]bool{}
	for i, k := range c.APIKeys {
		p := confcheck.Index("apiKeys", i)
		if k.Name == "" {
			e.Addf(confcheck.Field(p, "name"), "required")
		}
		if n := len(k.Value); n < 20 || n > 128 {
			e.Addf(confcheck.Field(p, "value"), "must be 20 to 128 characters (as on AWS), got %d", n)
		}
		if values[k.Value] {
			e.Addf(confcheck.Field(p, "value"), "the same value as another key")
		}
		values[k.Value] = true
	}
	for key, r := range c.Routes {
		if r.APIKeyRequired && len(c.APIKeys) == 0 {
			e.Addf(confcheck.Field(confcheck.Key("routes", key), "apiKeyRequired"), "no apiKeys are configured: every request would be refused")
		}
	}
}

// apiKey finds the connection's API key: the x-api-key header of the
// $connect request, or the authorizer's usageIdentifierKey. It sets the
// identity's apiKey and apiKeyId when the key is known and enabled.
func (c *Config) apiKey(r *http.Request, fromAuthorizer string, id *Identity) {
	v := r.Header.Get("X-Api-Key")
	if c.APIKeySelectionExpression == apiKeyFromAuthorizer {
		v = fromAuthorizer
	}
	if v == "" {
		return
	}
	for _, k := range c.APIKeys {
		if k.Value == v && (k.Enabled == nil || *k.Enabled) {
			id.APIKey = k.Value // not v: a substring of the request's head
			id.APIKeyID = k.ID
			if id.APIKeyID == "" {
				id.APIKeyID = k.Name
			}
			return
		}
	}
}
