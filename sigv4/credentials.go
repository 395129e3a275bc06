package sigv4

// Credentials are one AWS-style key pair, with the session token that comes
// with temporary (STS) credentials.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is empty for long-term keys. When set, requests must carry
	// it (X-Amz-Security-Token); when empty, requests must not carry one.
	SessionToken string
}

// CredentialStore looks up the secret for an access key id.
// Implementations must be safe for concurrent use; Lookup is called on every
// verification, so it should not block on I/O.
type CredentialStore interface {
	Lookup(accessKeyID string) (Credentials, bool)
}

// StaticCredentials is a fixed CredentialStore keyed by access key id. It is
// safe for concurrent use as long as nobody writes to the map.
type StaticCredentials map[string]Credentials

var _ CredentialStore = StaticCredentials(nil)

// Lookup returns the credentials stored under accessKeyID.
func (s StaticCredentials) Lookup(accessKeyID string) (Credentials, bool) {
	c, ok := s[accessKeyID]
	return c, ok
}
