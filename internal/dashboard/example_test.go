package dashboard_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"

	"github.com/wsgate/wsgate/internal/dashboard"
)

// Example shows how `wsgate demo` composes the dashboard: one SQLite file,
// the generator writing to it, and the page served beside the WebSocket
// API's stage on the same host (the page connects to ws://host/demo).
func Example() {
	ctx := context.Background()
	db, err := dashboard.OpenDB("wsgate-demo.db")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := dashboard.EnsureSchema(ctx, db, "orders"); err != nil {
		log.Fatal(err)
	}
	gen := &dashboard.Generator{DB: db, Table: "orders", Rate: 2, Logger: slog.Default()}
	go gen.Run(ctx)

	var gateway http.Handler // the WebSocket API, stage "demo"
	mux := http.NewServeMux()
	mux.Handle("/demo", gateway) // more specific than "/", so it wins
	mux.Handle("/", dashboard.Handler(dashboard.Config{
		DB: db, Table: "orders", Stage: "demo", Group: "orders",
		Viewers: func() int { return 0 }, // the hub's count of the group's connections
	}))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
