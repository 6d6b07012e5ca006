package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// TLS makes the server speak only TLS, with a certificate for 127.0.0.1
// signed by a CA made for the test; CAFile names that CA's PEM file.
func TLS() Option {
	return func(o *options) { o.tls = true }
}

// ClientCerts makes a TLS server (it implies TLS) that requires every client
// to present a certificate signed by the test CA (tls-auth-clients yes);
// ClientCertFile and ClientKeyFile are one, and TLSConfig presents it.
func ClientCerts() Option {
	return func(o *options) { o.tls, o.clientCerts = true, true }
}

// ClientCertFile is the PEM file of a client certificate signed by the test
// CA (TLS servers only).
func (s *Server) ClientCertFile() string { return filepath.Join(s.dir, "client.pem") }

// ClientKeyFile is the PEM file of ClientCertFile's private key.
func (s *Server) ClientKeyFile() string { return filepath.Join(s.dir, "client.key") }

// CAFile is the PEM file of the CA that signed the server's certificate
// (TLS servers only).
func (s *Server) CAFile() string { return filepath.Join(s.dir, "ca.pem") }

// TLSConfig is a client TLS configuration that trusts the test CA.
func (s *Server) TLSConfig() *tls.Config {
	if !s.opts.tls {
		return nil
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(s.CAFile())
	if err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if s.opts.clientCerts {
		if pair, err := tls.LoadX509KeyPair(s.ClientCertFile(), s.ClientKeyFile()); err == nil {
			c.Certificates = []tls.Certificate{pair}
		}
	}
	return c
}

// writeCerts makes a CA, a server certificate for 127.0.0.1 and a client
// certificate in dir.
func writeCerts(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "redistest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return err
	}
	cliKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	cliTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "errand"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cliDER, err := x509.CreateCertificate(rand.Reader, cliTmpl, caTmpl, &cliKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	cliKeyDER, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		return err
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: srvDER},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
		"client.pem": {Type: "CERTIFICATE", Bytes: cliDER},
		"client.key": {Type: "EC PRIVATE KEY", Bytes: cliKeyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
