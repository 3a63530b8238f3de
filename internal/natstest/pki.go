package natstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// PKI is a self-signed CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files. The certificates are valid for an hour.
type PKI struct {
	// CAFile is the CA certificate.
	CAFile string
	// ServerCert and ServerKey are the server's certificate (for 127.0.0.1) and key.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are the client's certificate and key.
	ClientCert, ClientKey string
}

// NewPKI creates a new CA, issues the server and client certificates with it
// and writes them all under t.TempDir().
func NewPKI(t testing.TB) PKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "natstest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (certPEM, keyPEM []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: "natstest"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	}
	sc, sk := leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	cc, ck := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	return PKI{
		CAFile:     WriteFile(t, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		ServerCert: WriteFile(t, "server.pem", sc),
		ServerKey:  WriteFile(t, "server-key.pem", sk),
		ClientCert: WriteFile(t, "client.pem", cc),
		ClientKey:  WriteFile(t, "client-key.pem", ck),
	}
}

// ServerTLS returns server options that serve TLS with p's server certificate
// and a 5 s handshake timeout. With verifyClients the server also requires a
// client certificate signed by p's CA.
func (p PKI) ServerTLS(t testing.TB, verifyClients bool) func(*server.Options) {
	t.Helper()
	tlsOpts := &server.TLSConfigOpts{CertFile: p.ServerCert, KeyFile: p.ServerKey}
	if verifyClients {
		tlsOpts.CaFile, tlsOpts.Verify = p.CAFile, true
	}
	tc, err := server.GenTLSConfig(tlsOpts)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *server.Options) {
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, verifyClients, 5
	}
}
