package integration

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/wsgate/wsgate/sigv4"
)

// assumedRole is credentialsArn as API Gateway honours it: the role's
// temporary credentials from STS AssumeRole, asked for with the base
// credentials (the standard chain or the profile), signed with wsgate's
// SigV4 and sent to AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the
// region's STS endpoint. They are cached and asked for again
// refreshBefore their expiry.
type assumedRole struct {
	roleArn string
	region  string
	base    aws.CredentialsProvider
	client  *http.Client
	log     *slog.Logger

	mu       sync.Mutex // held while asking STS: one request at a time
	cached   aws.Credentials
	fallback bool // STS refused: sign with the base credentials (logged once)
}

const (
	// assumeDuration is the lifetime asked for: STS's default, and the
	// most a role chained from other temporary credentials may get.
	assumeDuration = time.Hour
	// refreshBefore renews credentials this long before they expire, so a
	// request signed with them still runs within their lifetime.
	refreshBefore = 5 * time.Minute
	stsVersion    = "2011-06-15"
	sessionName   = "wsgate"
)

// callerCredentials is API Gateway's credentialsArn for "the caller's
// credentials": no role to assume.
const callerCredentials = "arn:aws:iam::*:user/*"

// isRoleArn reports whether arn names an IAM role to assume.
func isRoleArn(arn string) bool {
	parts := strings.SplitN(arn, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "iam" && strings.HasPrefix(parts[5], "role/")
}

// stsEndpoint is the STS endpoint for region.
func stsEndpoint(region string) string {
	if u := os.Getenv("AWS_ENDPOINT_URL_STS"); u != "" {
		return strings.TrimSuffix(u, "/")
	}
	if u := os.Getenv("AWS_ENDPOINT_URL"); u != "" {
		return strings.TrimSuffix(u, "/")
	}
	suffix := ".amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix = ".amazonaws.com.cn"
	}
	return "https://sts." + region + suffix
}

// Retrieve returns the role's credentials, asking STS when none are cached
// or they expire within refreshBefore.
func (a *assumedRole) Retrieve(ctx context.Context) (aws.Credentials, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fallback {
		return a.base.Retrieve(ctx)
	}
	if a.cached.AccessKeyID != "" && time.Until(a.cached.Expires) > refreshBefore {
		return a.cached, nil
	}
	creds, err := a.assume(ctx)
	var denied *stsError
	if errors.As(err, &denied) && denied.Code == "AccessDenied" {
		// The role trusts apigateway.amazonaws.com, not the local caller:
		// what a template deployed on AWS usually says.
		a.log.Warn("aws integration: cannot assume credentialsArn, signing with the caller's credentials instead",
			"role", a.roleArn, "error", err)
		a.fallback = true
		return a.base.Retrieve(ctx)
	}
	if err != nil {
		return aws.Credentials{}, err
	}
	a.cached = creds
	return creds, nil
}

// stsError is an STS error answer.
type stsError struct {
	Status  int
	Code    string `xml:"Error>Code"`
	Message string `xml:"Error>Message"`
}

func (e *stsError) Error() string {
	return fmt.Sprintf("sts AssumeRole: %d %s: %s", e.Status, e.Code, e.Message)
}

// assume calls STS AssumeRole with the base credentials.
func (a *assumedRole) assume(ctx context.Context) (aws.Credentials, error) {
	base, err := a.base.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials to assume %s with: %w", a.roleArn, err)
	}
	form := url.Values{
		"Action":          {"AssumeRole"},
		"Version":         {stsVersion},
		"RoleArn":         {a.roleArn},
		"RoleSessionName": {sessionName},
		"DurationSeconds": {fmt.Sprint(int(assumeDuration.Seconds()))},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, stsEndpoint(a.region)+"/", strings.NewReader(form.Encode()))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("sts AssumeRole: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sc := sigv4.Credentials{AccessKeyID: base.AccessKeyID, SecretAccessKey: base.SecretAccessKey, SessionToken: base.SessionToken}
	if err := sigv4.Sign(req, sc, "sts", a.region, time.Now(), ""); err != nil {
		return aws.Credentials{}, fmt.Errorf("sts AssumeRole: signing: %w", err)
	}
	res, err := send(ctx, a.client, req)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("sts AssumeRole: %w", err)
	}
	if res.Status != "200" {
		e := &stsError{}
		_ = xml.Unmarshal([]byte(res.Body), e)
		fmt.Sscan(res.Status, &e.Status)
		return aws.Credentials{}, e
	}
	var doc struct {
		Credentials struct {
			AccessKeyID     string    `xml:"AccessKeyId"`
			SecretAccessKey string    `xml:"SecretAccessKey"`
			SessionToken    string    `xml:"SessionToken"`
			Expiration      time.Time `xml:"Expiration"`
		} `xml:"AssumeRoleResult>Credentials"`
	}
	if err := xml.Unmarshal([]byte(res.Body), &doc); err != nil || doc.Credentials.AccessKeyID == "" {
		return aws.Credentials{}, fmt.Errorf("sts AssumeRole: no credentials in the answer (%v)", err)
	}
	c := doc.Credentials
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		CanExpire: true, Expires: c.Expiration, Source: "wsgate AssumeRole " + a.roleArn}, nil
}
