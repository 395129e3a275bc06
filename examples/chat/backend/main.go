// Command backend is the chat's HTTP backend: wsgate POSTs it the API
// Gateway event of each route (type: http) and it answers with a Lambda
// proxy response.
//
//	POST /connect      $connect: accept, and join the connection to group "room"
//	POST /sendmessage  {"action":"sendmessage","data":"hi"}: publish data to "room"
//
// Publishing is one SigV4-signed POST to wsgate's management API,
// {endpoint}/@groups/room, signed with aws-sdk-go-v2's v4 signer for the
// service execute-api, with a key from wsgate.yaml's credentials.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// room is the one group every connection joins.
const room = "room"

type backend struct {
	creds  aws.Credentials
	region string
	// management is the management API endpoint, http://HOST/{stage}; empty,
	// it is taken from each event's domainName and stage.
	management string
	signer     *v4.Signer
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to serve wsgate's integration requests on")
	b := &backend{signer: v4.NewSigner()}
	flag.StringVar(&b.creds.AccessKeyID, "access-key", "AKIDLOCAL", "access key id, one of wsgate.yaml's credentials")
	flag.StringVar(&b.creds.SecretAccessKey, "secret-key", "change-me", "its secret access key")
	flag.StringVar(&b.region, "region", "us-east-1", "wsgate.yaml's region (SigV4 signing region)")
	flag.StringVar(&b.management, "management", "", "management API endpoint (default: http://{domainName}/{stage} from each event)")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect", b.connect)
	mux.HandleFunc("POST /sendmessage", b.sendMessage)
	// The test reads the address from this line.
	fmt.Printf("backend listening on http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

// connect accepts every connection. "groups" is wsgate's extension of the
// $connect response: the connection joins these groups (AWS ignores it).
func (b *backend) connect(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"statusCode": 200, "groups": []string{room}})
}

func (b *backend) sendMessage(w http.ResponseWriter, r *http.Request) {
	var ev events.APIGatewayWebsocketProxyRequest
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, "want an API Gateway WebSocket event", http.StatusBadRequest)
		return
	}
	var msg struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal([]byte(ev.Body), &msg); err != nil {
		writeJSON(w, map[string]any{"statusCode": 400})
		return
	}
	endpoint := b.management
	if endpoint == "" {
		endpoint = "http://" + ev.RequestContext.DomainName + "/" + ev.RequestContext.Stage
	}
	if err := b.publish(r.Context(), endpoint, []byte(msg.Data)); err != nil {
		// A 5xx makes wsgate send the client "Internal server error".
		log.Printf("publishing: %v", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	writeJSON(w, map[string]any{"statusCode": 200})
}

// publish posts data to every member of room: POST {endpoint}/@groups/room.
func (b *backend) publish(ctx context.Context, endpoint string, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/@groups/"+room, bytes.NewReader(data))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if err := b.signer.SignHTTP(ctx, b.creds, req, hex.EncodeToString(sum[:]), "execute-api", b.region, time.Now()); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, body)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
