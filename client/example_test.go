package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/wsgate/wsgate/client"
)

// Publish to a group, then page through its members. Credentials and
// region come from the SDK's standard chain.
func Example() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Options{EndpointURL: "http://127.0.0.1:8080/dev"})
	if err != nil {
		log.Fatal(err)
	}
	d, err := c.Publish(ctx, "lobby", []byte(`{"type":"hello"}`))
	var ae *client.APIError
	if errors.As(err, &ae) {
		log.Fatalf("publish: %s (%d): %s", ae.Code, ae.StatusCode, ae.Message)
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println("delivered to", d.Delivered, "skipped", d.Skipped)

	p := client.NewMembersPaginator(c, "lobby", 100)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			log.Fatal(err)
		}
		for _, id := range page.ConnectionIDs {
			fmt.Println(id)
		}
	}
}
