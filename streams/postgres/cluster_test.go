package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/wsgate/wsgate/internal/testenv"
)

const installPostgres = "apt-get install -y postgresql"

// cluster is a throwaway PostgreSQL server in a temporary directory.
type cluster struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *cluster) dsn(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.port, db)
}

var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.stop()
	}
	os.Exit(code)
}

// sharedCluster is the wal_level=logical server all tests of this binary use.
func sharedCluster(t *testing.T) *cluster { return sharedClusterB(t) }

func sharedClusterB(t testing.TB) *cluster {
	t.Helper()
	bin := pgBinDir(t)
	shared.once.Do(func() { shared.c, shared.err = startCluster(bin, "logical") })
	if shared.err != nil {
		t.Fatalf("starting postgres: %v", shared.err)
	}
	return shared.c
}

// pgBinDir finds initdb and postgres on PATH or in Debian's
// /usr/lib/postgresql/<version>/bin.
func pgBinDir(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) < pgVersion(found[j]) })
	if len(found) == 0 {
		testenv.Missing(t, "PostgreSQL server binaries (initdb, postgres)", installPostgres)
	}
	return filepath.Dir(found[len(found)-1])
}

func pgVersion(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// serverUser is the account initdb and postgres run as: the current one,
// or "postgres" when the tests run as root (initdb refuses root).
func serverUser() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs a postgres user (%s creates it): %w", installPostgres, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &account{uid: uid, gid: gid}, nil
}

// account is a user and group to run a program as (runAs).
type account struct{ uid, gid int }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startCluster(bin, walLevel string) (*cluster, error) {
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	// As root the server runs as postgres, which must reach the directory:
	// /tmp rather than a TMPDIR that may sit under /root.
	base := ""
	if cred != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "wsgate-pg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, cred.uid, cred.gid); err != nil {
			return nil, err
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		if cred != nil {
			runAs(cmd, cred)
		}
		return cmd
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// A port picked free may be taken before postgres binds it (by another
	// test binary); postgres then exits, and another port is tried.
	var lastErr error
	for range 5 {
		c, err := launch(run, dir, data, walLevel)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// launch starts postgres on a free port and waits until it serves
// connections from its own data directory.
func launch(run func(string, ...string) *exec.Cmd, dir, data, walLevel string) (*cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := run("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "wal_level="+walLevel,
		"-c", "max_replication_slots=50", "-c", "max_wal_senders=50",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	c := &cluster{dir: dir, port: port, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err == nil {
			var got string
			err = conn.QueryRow(ctx, "SHOW data_directory").Scan(&got)
			conn.Close(context.Background())
			if err == nil && got != data {
				err = fmt.Errorf("port %d is served by another cluster (%s)", port, got)
			}
		}
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-c.done:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("postgres exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			c.cmd.Process.Kill()
			<-c.done
			return nil, fmt.Errorf("postgres did not accept connections within 30s: %w", err)
		}
		time.Sleep(50 * time.Millisecond) // server start-up poll, outside any test
	}
}

// stop shuts the server down fast (SIGINT) and removes its files.
func (c *cluster) stop() {
	c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	os.RemoveAll(c.dir)
}

// newDatabase creates a database for one test and returns its DSN and an
// open connection to it.
func newDatabase(t *testing.T, c *cluster) (string, *pgx.Conn) { return newDatabaseB(t, c) }

func newDatabaseB(t testing.TB, c *cluster) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("t_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY = FILE_COPY"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.dsn(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return c.dsn(name), conn
}

// dumpOnFailure logs the server's view of replication when t failed.
func dumpOnFailure(t *testing.T, c *cluster) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		rows, _ := conn.Query(ctx, "SELECT slot_name || ' ' || database || ' active=' || active || ' confirmed=' || coalesce(confirmed_flush_lsn::text, '') || ' restart=' || coalesce(restart_lsn::text, '') FROM pg_replication_slots")
		slots, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		rows, _ = conn.Query(ctx, "SELECT application_name || ' ' || state || ' sent=' || coalesce(sent_lsn::text, '') || ' flush=' || coalesce(flush_lsn::text, '') FROM pg_stat_replication")
		senders, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		var lsn string
		conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&lsn)
		t.Logf("wal=%s\nslots:\n%s\nsenders:\n%s", lsn, strings.Join(slots, "\n"), strings.Join(senders, "\n"))
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		t.Logf("server log:\n%s", log)
	})
}
