package dashboard

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SnapshotLimit is the most rows GET /api/snapshot returns.
const SnapshotLimit = 500

//go:embed web
var webFS embed.FS

// Config says what the page shows. The zero value of each optional field
// gives the `wsgate demo` defaults.
type Config struct {
	// DB is the SQLite database holding Table, opened with OpenDB.
	// Required.
	DB *sql.DB
	// Table is the table shown. Default "orders".
	Table string
	// Stage is the WebSocket API stage the page connects to, as
	// ws(s)://host/{Stage}. Default "demo".
	Stage string
	// Group is the group the page subscribes to, the one the table's change
	// stream publishes to. Default "orders".
	Group string
	// Viewers reports how many pages are connected, for /api/snapshot.
	// Default: always 0 (the page then learns the count from viewers
	// frames only).
	Viewers func() int
	// SQLiteCommand is the command line the page suggests for making a
	// change by hand. Default: an INSERT through the sqlite3 shell on the
	// database's file (see DefaultSQLiteCommand).
	SQLiteCommand string
	// Logger receives errors reading the database. Default: discard.
	Logger *slog.Logger
}

// pageConfig is the body of GET /api/config.
type pageConfig struct {
	Stage         string `json:"stage"`
	Group         string `json:"group"`
	Table         string `json:"table"`
	SQLiteCommand string `json:"sqliteCommand"`
}

// Handler returns the dashboard: the page and its assets at "/", GET
// /api/config and GET /api/snapshot. It panics if cfg.DB is nil or
// cfg.Table is not a plain identifier, since either is a programming error
// that no request could recover from.
func Handler(cfg Config) http.Handler {
	if cfg.DB == nil {
		panic("dashboard: Config.DB is nil")
	}
	if cfg.Table == "" {
		cfg.Table = "orders"
	}
	if _, err := quoteTable(cfg.Table); err != nil {
		panic("dashboard: " + err.Error())
	}
	if cfg.Stage == "" {
		cfg.Stage = "demo"
	}
	if cfg.Group == "" {
		cfg.Group = "orders"
	}
	if cfg.Viewers == nil {
		cfg.Viewers = func() int { return 0 }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		panic("dashboard: " + err.Error()) // the embed directive guarantees "web"
	}
	h := &handler{cfg: cfg}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/config", h.config)
	mux.HandleFunc("GET /api/snapshot", h.snapshot)
	mux.Handle("GET /", noCache(http.FileServerFS(static)))
	return mux
}

type handler struct {
	cfg Config
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) {
	cmd := h.cfg.SQLiteCommand
	if cmd == "" {
		file, err := databaseFile(r.Context(), h.cfg.DB)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		cmd = DefaultSQLiteCommand(relative(file), h.cfg.Table)
	}
	writeJSON(w, pageConfig{
		Stage:         h.cfg.Stage,
		Group:         h.cfg.Group,
		Table:         h.cfg.Table,
		SQLiteCommand: cmd,
	})
}

func (h *handler) snapshot(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	s, err := readSnapshot(ctx, h.cfg.DB, h.cfg.Table, SnapshotLimit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	s.Viewers = h.cfg.Viewers()
	writeJSON(w, s)
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.cfg.Logger.Error("dashboard request failed", "path", r.URL.Path, "err", err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintln(w, `{"message":"Internal server error"}`)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v) // a write error means the client left
}

// noCache makes browsers revalidate the page and its assets, so a new
// wsgate binary's page is never mixed with an old one's script.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

// DefaultSQLiteCommand returns a sqlite3 shell command that inserts a new
// pending order into table in the database file at path. Each run inserts
// a fresh random id ("you-" and four hex digits, apart from the generator's
// "o-1234"), so it can be pasted again and again; the generator then moves
// the order along like any other.
func DefaultSQLiteCommand(path, table string) string {
	if path == "" {
		path = "wsgate-demo.db"
	}
	sql := `INSERT INTO ` + table + ` (id, customer, item, quantity, amount) ` +
		`VALUES ('you-' || lower(hex(randomblob(2))), 'You', 'Hand-made change', 1, 9.99);`
	// A busy timeout: without one the CLI fails at once ("database is
	// locked") whenever the generator or wsgate is writing.
	return "sqlite3 -cmd '.timeout 5000' " + shellQuote(path) + ` "` + sql + `"`
}

// relative returns path relative to the working directory when it lies
// below it (the visitor most likely runs sqlite3 where they ran wsgate),
// else path unchanged.
func relative(path string) string {
	wd, err := os.Getwd()
	if err != nil || path == "" {
		return path
	}
	rel, err := filepath.Rel(wd, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return path
	}
	return rel
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+=:@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
