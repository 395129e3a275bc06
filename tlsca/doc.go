// Package tlsca is wsgate's local certificate authority and certificate
// handling, modelled on Caddy's local HTTPS: a root CA created once in a
// state directory (ECDSA P-256, key file 0600 in a 0700 directory), short
// lived leaf certificates issued from it in memory and renewed before they
// expire, certificates loaded from files and reloaded when the files
// change, a CA bundle (the system's CAs plus the local root) for processes
// that read AWS_CA_BUNDLE, SSL_CERT_FILE and the like, and installing the
// root into the system trust store where the platform allows it.
//
// Concurrency: CA is immutable once opened. Leaves and FileCert are safe
// for concurrent use; their GetCertificate methods are meant for
// tls.Config.GetCertificate and take one mutex, held while a certificate
// is issued or files are re-read (bounded: at most one stat per
// CheckInterval).
package tlsca
