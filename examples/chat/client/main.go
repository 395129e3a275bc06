// Command client is a terminal chat client: each line you type is sent as
// {"action":"sendmessage","data":LINE}; each message received is printed.
//
//	go run ./client [-url ws://127.0.0.1:8080/dev]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	url := flag.String("url", "ws://127.0.0.1:8080/dev", "wsgate's WebSocket URL")
	flag.Parse()
	c, _, err := websocket.DefaultDialer.Dial(*url, nil)
	if err != nil {
		log.Fatalf("connecting: %v", err)
	}
	defer c.Close()
	fmt.Fprintln(os.Stderr, "connected to", *url)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					log.Fatalf("connection closed: %v", err)
				}
				return
			}
			fmt.Println(string(msg))
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if err := c.WriteJSON(map[string]string{"action": "sendmessage", "data": in.Text()}); err != nil {
			log.Fatalf("sending: %v", err)
		}
	}
	// End of input: close as a browser closing the tab would, and wait for
	// the server's answer.
	_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
