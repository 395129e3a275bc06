package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/wsgate/wsgate/httpfront"
	"github.com/wsgate/wsgate/hub"
	"github.com/wsgate/wsgate/sigv4"
)

// manage serves the management API below /{stage}/. rest is the escaped
// path after "/{stage}/". Every request is SigV4-verified (service
// execute-api) before anything else, as API Gateway does.
func (g *Gateway) manage(w http.ResponseWriter, r *http.Request, rest string) {
	if err := checkPath(rest); err != nil {
		writeAPIError(w, err)
		return
	}
	var who sigv4.Identity
	if err := g.current().verify(r, &who); err != nil {
		writeAPIError(w, err)
		return
	}
	seg, tail, _ := strings.Cut(rest, "/")
	switch seg {
	case "@connections", "%40connections":
		if tail == "" {
			g.listConnections(w, r)
			return
		}
		id, ok := lastPathID(tail, r.URL.Path)
		if !ok {
			writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@connections/"+tail+" for http method "+r.Method+"."))
			return
		}
		g.connection(w, r, id, &who)
	case "@groups", "%40groups":
		g.groups(w, r, tail)
	case "@cluster", "%40cluster":
		if tail != "" {
			writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/"+rest+" for http method "+r.Method+"."))
			return
		}
		g.cluster(w, r)
	default:
		if h := g.ext[strings.Replace(seg, "%40", "@", 1)]; h != nil && tail == "" {
			h.ServeHTTP(w, r)
			return
		}
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/"+rest+" for http method "+r.Method+"."))
	}
}

// errDotSegment answers a management path with a '.', '..' or empty
// segment, before its signature is checked. Signers and SigV4 verification
// remove such segments ("/dev/@groups/../@connections/x" is signed as
// "/dev/@connections/x") where routing would not, so a signature for one
// request could be replayed as another: a DELETE of a connection as a
// leave of group "..", a presigned $connect URL as a listing of
// "/dev/@groups/..". Encoded dots ("%2e%2e") are refused too: SigV4 leaves
// them alone, but routing decodes them and a proxy in front may not.
// wsgate's choice; what AWS answers is unverified.
var errDotSegment = errBadRequest.with("Invalid path: '.', '..' and empty segments are not allowed, encoded or not.")

// checkPath accepts a management path "/{stage}/"+rest only if every
// signer signs it as it is (sigv4.PathIsNormal) and no segment decodes to
// '.' or '..'. Routing then dispatches on exactly the path the signature
// covers. The stage is one plain segment (the config allows no dots), so
// the whole path is normal exactly when rest is empty or, not starting
// with '/' (an empty segment after the stage), normal itself; checking
// rest alone saves building the path for every request.
func checkPath(rest string) *apiError {
	if rest != "" && (rest[0] == '/' || !sigv4.PathIsNormal(rest)) {
		return errDotSegment
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if len(seg) <= 6 && strings.Contains(seg, "%") { // "%2e%2e" at most
			if d, err := url.PathUnescape(seg); err == nil && (d == "." || d == "..") {
				return errDotSegment
			}
		}
	}
	return nil
}

// callKey is dedupeKey for a hub that reads it: a cluster hub delivers a
// POST or DELETE with one key once; a node's own hub delivers once
// anyway. The zero CallKey: none.
func (g *Gateway) callKey(r *http.Request, who *sigv4.Identity) hub.CallKey {
	if _, single := g.hub.(*hub.Memory); single {
		return hub.CallKey{}
	}
	return dedupeKey(r, who)
}

// dedupeKey names a management call across its retries: AWS SDKs send
// the same Amz-Sdk-Invocation-Id with every attempt of one operation and
// sign it, so a caller cannot use another caller's key. The key is
// "sdk:<access key id>:<invocation id>", in parts (no string built: a
// local keyed send hashes the parts). Unsigned or absent: the zero key.
func dedupeKey(r *http.Request, id *sigv4.Identity) hub.CallKey {
	inv := headerValue(r.Header, "Amz-Sdk-Invocation-Id")
	if inv == "" || id == nil || id.Presigned {
		return hub.CallKey{}
	}
	_, signed, _ := strings.Cut(headerValue(r.Header, "Authorization"), "SignedHeaders=")
	if i := strings.IndexByte(signed, ','); i >= 0 {
		signed = signed[:i]
	}
	const name = "amz-sdk-invocation-id"
	// SignedHeaders is sorted, so the SDK's list starts with it; the
	// first item is checked before the list is walked.
	if strings.HasPrefix(signed, name) && (len(signed) == len(name) || signed[len(name)] == ';') {
		return hub.CallKey{"sdk:", id.AccessKeyID, ":", inv}
	}
	for h := range strings.SplitSeq(signed, ";") {
		if h == name {
			return hub.CallKey{"sdk:", id.AccessKeyID, ":", inv}
		}
	}
	return hub.CallKey{}
}

// authorize verifies the request's SigV4 signature against the
// credentials of this config.
func (l *live) authorize(r *http.Request) *apiError {
	var id sigv4.Identity
	return l.verify(r, &id)
}

// verify verifies the request's SigV4 signature against the credentials
// of this config and writes who signed it into *id.
func (l *live) verify(r *http.Request, id *sigv4.Identity) *apiError {
	err := l.verifier.Check(r, id)
	if err == nil {
		return nil
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		if se.StatusCode == http.StatusRequestEntityTooLarge {
			// The body hash hit the 131072-byte cap: the same answer as
			// when the handler reads it.
			return errPayloadTooLarge
		}
		return &apiError{Status: se.StatusCode, Type: se.ErrorType, Message: se.Message}
	}
	return errForbidden.with(err.Error())
}

// pathID decodes one escaped path segment (ids end in '=', sent as %3D).
func pathID(seg string) (string, bool) {
	if seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	id, err := url.PathUnescape(seg)
	if err != nil || id == "" {
		return "", false
	}
	return id, true
}

// lastPathID is pathID for the path's last segment; decoded is the
// request's decoded path (URL.Path): when it ends in the segment's
// decoding, that substring is the id, and no copy is made.
func lastPathID(seg, decoded string) (string, bool) {
	i := strings.LastIndexByte(decoded, '/')
	if last := decoded[i+1:]; last != "" && !strings.Contains(seg, "/") && unescapesTo(seg, last) {
		return last, true
	}
	return pathID(seg)
}

// unescapesTo reports whether url.PathUnescape(seg) is plain, without
// building it: every byte of seg is plain's next byte or a valid %XX
// escape of it.
func unescapesTo(seg, plain string) bool {
	j := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return false
			}
			c = unhex(seg[i+1])<<4 | unhex(seg[i+2])
			i += 2
		}
		if j >= len(plain) || plain[j] != c {
			return false
		}
		j++
	}
	return j == len(plain)
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// connection serves @connections/{id}; who signed the request.
func (g *Gateway) connection(w http.ResponseWriter, r *http.Request, id string, who *sigv4.Identity) {
	switch r.Method {
	case http.MethodPost:
		body, aerr := readBody(r)
		if aerr != nil {
			writeAPIError(w, aerr)
			return
		}
		local, err := g.sendData(r, id, body, g.callKey(r, who))
		if err != nil {
			writeAPIError(w, hubError(err))
			return
		}
		if local {
			// Nothing of the head is kept: the frame has the body's
			// copy, the id was only looked up, the signing-key cache
			// clones what it keeps and the observers get constants.
			// The next request on this socket reads its head into the
			// same memory (the front's one allocation per request).
			httpfront.ReleaseHead(w)
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		info, err := g.hub.Info(r.Context(), id)
		if err != nil {
			writeAPIError(w, hubError(err))
			return
		}
		writeJSON(w, http.StatusOK, connectionJSON(info, false))
	case http.MethodDelete:
		ctx := r.Context()
		if key := g.callKey(r, who); !key.Empty() {
			ctx = hub.WithDedupeKey(ctx, key.String())
		}
		if err := g.hub.Disconnect(ctx, id, closeDeleted); err != nil {
			writeAPIError(w, hubError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent) // AWS answers 204 here, not 200
	default:
		writeAPIError(w, errNotFound.with("No method found matching route "+g.cfg.Stage+"/@connections/{connectionId} for http method "+r.Method+"."))
	}
}

// sendData is PostToConnection's send of r's body data to connection id,
// key its dedupe key (callKey) or the zero key. To one of the gateway's connections
// on this node (hub.Local: a node's own hub, or a cluster hub for its own
// ids; hub.LocalOnce: a cluster hub's own ids in a keyed call, which it
// delivers once) it builds no Message: the frame goes out of a pooled
// buffer (sendLocal, conn.sendData), which copied data, so the body SigV4
// read goes back to its pool too (sigv4.ReleaseBody): three allocations
// fewer per POST. Otherwise (another node's id) it is the hub's Send of a
// Message, which keeps data, with the key in its context. local reports
// the first case with no key: a send that kept none of r's strings (a
// keyed call's key stays in the dedupe table; another hub's Send may
// queue id).
func (g *Gateway) sendData(r *http.Request, id string, data []byte, key hub.CallKey) (local bool, err error) {
	if !key.Empty() {
		if h, ok := g.hub.(hub.LocalOnce); ok {
			if local, err := h.SendLocalOnce(key, id, data, sendLocal); local {
				sigv4.ReleaseBody(r)
				return false, err
			}
		}
		return false, g.hub.Send(hub.WithDedupeKey(r.Context(), key.String()), id, hub.NewMessage(data))
	}
	if h, ok := g.hub.(hub.Local); ok {
		hc, err := h.LookupLocal(r.Context(), id)
		if err != nil {
			return false, err
		}
		if c, ok := hc.(*conn); ok {
			err := c.sendData(data)
			sigv4.ReleaseBody(r)
			return true, err
		}
		if hc != nil {
			return false, hc.Send(hub.NewMessage(data))
		}
	}
	return false, g.hub.Send(r.Context(), id, hub.NewMessage(data))
}

// sendLocal is SendLocalOnce's send: a gateway connection's single send
// from data, or a Message of a copy of data for another Conn (the caller
// gives data back to its pool).
func sendLocal(hc hub.Conn, data []byte) error {
	if c, ok := hc.(*conn); ok {
		return c.sendData(data)
	}
	return hc.Send(hub.NewMessage(bytes.Clone(data)))
}

// readBody reads a POST body of at most 131072 bytes (PostToConnection's
// Data limit); beyond it 413 PayloadTooLargeException.
func readBody(r *http.Request) ([]byte, *apiError) {
	if r.ContentLength > maxMessageBytes {
		return nil, errPayloadTooLarge
	}
	if body, ok := sigv4.Body(r); ok && len(body) <= maxMessageBytes {
		// Read and hashed by the signature check: no second copy. Nothing
		// reads r.Body after this handler.
		return body, nil
	}
	var body []byte
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, errBadRequest.with("reading body: " + err.Error())
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMessageBytes+1))
	if err != nil {
		return nil, errBadRequest.with("reading body: " + err.Error())
	}
	if len(body) > maxMessageBytes {
		return nil, errPayloadTooLarge
	}
	return body, nil
}

func hubError(err error) *apiError {
	switch {
	case errors.Is(err, hub.ErrGone):
		return errGone
	case errors.Is(err, hub.ErrQueueFull):
		return errQueueFull
	case errors.Is(err, hub.ErrLimitExceeded):
		return errLimit.with(capitalize(err.Error()) + ".")
	case errors.Is(err, hub.ErrUnavailable):
		return errInternal.with(capitalize(err.Error()) + ".")
	}
	return errInternal.with(err.Error())
}

// capitalize upper-cases an ASCII first letter: Go error texts start
// lower-case, AWS messages do not.
func capitalize(s string) string {
	if s != "" && 'a' <= s[0] && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// isoMillis is GetConnection's timestamp format (timestampFormat iso8601).
const isoMillis = "2006-01-02T15:04:05.000Z"

// connectionJSON is GetConnection's wire shape (lowerCamel, ISO-8601
// strings); the listing adds the id and the groups.
func connectionJSON(in hub.Info, listing bool) map[string]any {
	m := map[string]any{
		"connectedAt":  in.ConnectedAt.UTC().Format(isoMillis),
		"identity":     map[string]string{"sourceIp": in.SourceIP, "userAgent": in.UserAgent},
		"lastActiveAt": in.LastActiveAt.UTC().Format(isoMillis),
	}
	if listing {
		m["connectionId"] = in.ConnectionID
		groups := in.Groups
		if groups == nil {
			groups = []string{}
		}
		m["groups"] = groups
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeAPIError(w, errInternal)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
