package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// moto is the test binary's one moto_server, started by the first Moto and
// stopped by StopMoto (call it from TestMain after m.Run).
var moto struct {
	once     sync.Once
	cmd      *exec.Cmd
	endpoint string
	err      error
}

// Moto returns the URL of the test binary's moto_server (DynamoDB and
// DynamoDB Streams, among others), starting it on a free loopback port the
// first time. Tests sharing it use their own table names.
func Moto(t testing.TB) string {
	t.Helper()
	bin := LookPath(t, "moto_server", "pip install 'moto[server]'")
	moto.once.Do(func() { moto.endpoint, moto.err = startMoto(bin) })
	if moto.err != nil {
		t.Fatalf("starting moto_server: %v", moto.err)
	}
	return moto.endpoint
}

// StopMoto stops the moto_server Moto started, if any.
func StopMoto() {
	if moto.cmd != nil {
		_ = moto.cmd.Process.Kill()
		_ = moto.cmd.Wait()
	}
}

// motoStartTimeout bounds moto_server's start. Its Python imports are CPU
// bound: 2-3 s on a quiet machine, 12 s at load average 15 on 2 cores, past
// 30 s under the load the whole suite and other agents make. A crash is
// seen at once (its stderr closes); this only catches a hang.
const motoStartTimeout = 3 * time.Minute

// startMoto runs moto_server on port 0 and reads the port it bound from its
// "Running on http://127.0.0.1:PORT" line, so parallel test binaries never
// race for a port.
func startMoto(bin string) (string, error) {
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	moto.cmd = cmd
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, url, ok := strings.Cut(sc.Text(), "Running on "); ok {
				select {
				case found <- strings.TrimSpace(url):
				default:
				}
			}
		}
		close(found)
	}()
	select {
	case url, ok := <-found:
		if !ok {
			return "", errors.New("moto_server exited before it listened")
		}
		return url, nil
	case <-time.After(motoStartTimeout):
		return "", fmt.Errorf("moto_server did not listen within %v", motoStartTimeout)
	}
}
