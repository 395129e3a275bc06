// Package sigv4 signs and verifies AWS Signature Version 4
// (AWS4-HMAC-SHA256) requests, byte for byte as AWS and its SDKs do.
//
// # Model
//
// A signature is an HMAC chain over a canonical form of the request:
//
//	CanonicalRequest = Method \n CanonicalURI \n CanonicalQuery \n
//	                   CanonicalHeaders \n SignedHeaders \n PayloadHash
//	StringToSign     = AWS4-HMAC-SHA256 \n X-Amz-Date \n
//	                   date/region/service/aws4_request \n hex(SHA256(CanonicalRequest))
//	SigningKey       = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
//	Signature        = hex(HMAC(SigningKey, StringToSign))
//
// The signer chooses what to sign; the verifier rebuilds the same canonical
// request from what it received and compares. Everything hard is in
// rebuilding exactly what the client built, so the rules below are
// documented where the verifier applies them.
//
// Sign (header auth) and Presign (query auth, e.g. an IAM-authorised
// WebSocket $connect URL) are for clients; Verifier.Verify is for servers.
//
// # Encoding rules
//
// Canonical URI. Every service but S3 takes the path as it is on the wire,
// still percent-encoded, removes dot segments and empty segments (as botocore
// does), then percent-encodes it again: every byte outside A-Z a-z 0-9 - . _ ~
// and '/' becomes %XX. So the wire path /dev/@connections/abc%3D has the
// canonical URI /dev/%40connections/abc%253D, and /dev/%40connections/abc%3D
// (a different wire path) has /dev/%2540connections/abc%253D. The verifier
// therefore reads r.RequestURI, the request-target exactly as received, and
// never the decoded r.URL.Path; routers must not clean or redirect the path
// before verification. aws-sdk-go-v2 does not normalize, so when a wire path
// has "//", "." or ".." segments the verifier also accepts the un-normalized
// form. S3 (Verifier.S3, Signer.S3) encodes the decoded path exactly once and
// never normalizes.
//
// Routing on the signed path. Because of normalization, a signature made for
// /dev/@connections/x also verifies on /dev/@groups/../@connections/x. A
// server should route on RequestPath (the wire path Verify signs) and refuse
// paths for which PathIsNormal is false, so that the path it dispatches on
// is exactly the one the signature covers.
//
// Canonical query. The raw query is split on '&' (empty pieces dropped), each
// piece at its first '=' (no '=' means an empty value); names and values are
// percent-decoded, with '+' read as a space as Go and aws-sdk-go-v2 read it,
// then strictly re-encoded with the same unreserved set (space is %20, never
// '+'), sorted by encoded name then encoded value, and joined with '&'.
// A presigned URL's X-Amz-Signature is left out. A stray '%' that starts no
// valid escape stands for itself (%25).
//
// Canonical headers. Only the headers the client listed in SignedHeaders,
// which must include host. Values are trimmed, runs of ASCII whitespace are
// collapsed to one space, and repeated headers are joined with ',' in the
// order received. host, content-length, transfer-encoding and expect are
// taken from where Go's server keeps them (r.Host, r.ContentLength,
// r.TransferEncoding).
//
// Payload hash. The hex SHA-256 of the body. Clients of execute-api do not
// send it, so the verifier reads the body (at most MaxBodyBytes) and hashes
// it, then puts a reader over the same bytes back into r.Body. When a client
// sends X-Amz-Content-Sha256 its value is used, and it must match the body;
// UNSIGNED-PAYLOAD is accepted only with Verifier.S3 or AllowUnsignedPayload.
//
// Session tokens. A key with a session token in the CredentialStore must be
// used with exactly that token (X-Amz-Security-Token), and a key without one
// must be used without; the token is checked whether or not it was signed.
//
// Time. X-Amz-Date (else Date) must be within MaxSkew (5 minutes) of the
// server clock, in both directions. A presigned URL is valid from X-Amz-Date
// minus MaxSkew to X-Amz-Date plus X-Amz-Expires (at most 7 days); without
// X-Amz-Expires the header-auth window applies. The credential scope's date
// must be X-Amz-Date's first eight characters; its region, service and
// terminator must match.
//
// # Errors
//
// Verify returns *Error, which carries what API Gateway answers: HTTP
// status (403 for every signature failure), x-amzn-ErrorType and message
// text, plus a Reason for logs and metrics. Error.WriteHTTP writes it the way
// AWS clients parse it. With Verifier.Debug the mismatch message includes the
// expected canonical request and string to sign, as AWS's does.
//
// # Concurrency and resources
//
// Sign, Presign and a configured Verifier are safe for concurrent use; a
// Verifier's fields must not change once it is in use. Verify never panics
// on any input and never reads more than MaxBodyBytes+1 bytes of body.
// Derived signing keys are cached process-wide per (secret, date, region,
// service) in a bounded cache (1024 entries, dropped when full), so a
// verification costs two HMACs; working buffers are pooled, so a verified
// small POST allocates a handful of times (the retained body and its
// reader, and the returned Identity).
package sigv4
