package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval bounds how often a FileCert looks at its files: at most
// one pair of stats per interval, whatever the handshake rate.
const CheckInterval = time.Second

// FileCert serves a certificate and key from PEM files and reloads them
// when either file's modification time or size changes. A pair that does
// not load (a half-written replacement, a key that does not match) is
// logged and the previous certificate kept until the files change again.
type FileCert struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cur     *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// LoadFiles loads the pair once; an error here is a start-up error.
// logger (nil: slog.Default()) receives failed reloads.
func LoadFiles(certFile, keyFile string, logger *slog.Logger) (*FileCert, error) {
	if logger == nil {
		logger = slog.Default()
	}
	f := &FileCert{certFile: certFile, keyFile: keyFile, log: logger}
	stamp, err := f.stamps()
	if err != nil {
		return nil, err
	}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	f.cur, f.stamp, f.checked = cert, stamp, time.Now()
	return f, nil
}

func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certFile %s and keyFile %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &cert, nil
}

func (f *FileCert) stamps() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, name := range []string{f.certFile, f.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, err
		}
		s[i] = fileStamp{fi.ModTime(), fi.Size()}
	}
	return s, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (f *FileCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now := time.Now(); now.Sub(f.checked) >= CheckInterval {
		f.checked = now
		f.reload()
	}
	return f.cur, nil
}

// Certificate is the certificate currently served.
func (f *FileCert) Certificate() *tls.Certificate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

func (f *FileCert) reload() {
	stamp, err := f.stamps()
	if err != nil {
		f.log.Warn("certificate files unreadable; keeping the loaded certificate", "error", err)
		return
	}
	if stamp == f.stamp {
		return
	}
	cert, err := loadPair(f.certFile, f.keyFile)
	if err != nil {
		// Not remembered as seen: retried at the next check, so the
		// second half of a replacement is picked up.
		f.log.Warn("certificate files changed but do not load; keeping the loaded certificate", "error", err)
		return
	}
	f.cur, f.stamp = cert, stamp
	f.log.Info("certificate reloaded", "certFile", f.certFile, "notAfter", cert.Leaf.NotAfter)
}
