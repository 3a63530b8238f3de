package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/datacore-bridge/datacore-bridge/internal/natstest"
)

// TestValidateNATSInputs checks that NATS URLs and files that cannot work are
// config errors naming their variable, found at load rather than at connect.
func TestValidateNATSInputs(t *testing.T) {
	const secret = "n4ts-s3cret-token"
	pki := natstest.NewPKI(t)
	nkey := natstest.NewNKeyUser(t)
	creds := natstest.NewOperator(t).CredsFile
	garbage := writeFile(t, "garbage", "not a key, not a certificate\n")
	tests := []struct {
		name    string
		mutate  func(c *Config)
		wantVar string // "" when valid
		wantMsg string
	}{
		{"url unclosed bracket", func(c *Config) { c.NATSURLs = []string{"nats://[::1"} }, "DATACORE_NATS_URL", "not a valid URL"},
		{"url of colons", func(c *Config) { c.NATSURLs = []string{"::::"} }, "DATACORE_NATS_URL", "server URL number 1"},
		{"url port too big", func(c *Config) { c.NATSURLs = []string{"nats://127.0.0.1:99999"} }, "DATACORE_NATS_URL", `port "99999"`},
		{"url port zero", func(c *Config) { c.NATSURLs = []string{"nats://127.0.0.1:0"} }, "DATACORE_NATS_URL", `port "0"`},
		{"url port not a number", func(c *Config) { c.NATSURLs = []string{"nats://h:42x2"} }, "DATACORE_NATS_URL", "server URL number 1"},
		{"second url bad", func(c *Config) { c.NATSURLs = []string{"nats://a:4222", "nats://b:70000"} }, "DATACORE_NATS_URL", "server URL number 2"},
		{"url with token and bad port", func(c *Config) { c.NATSURLs = []string{"nats://" + secret + "@h:99999"} }, "DATACORE_NATS_URL", "nats://[set]@h:99999"},
		{"unparsable url with password", func(c *Config) { c.NATSURLs = []string{"nats://u:" + secret + "@[::1"} }, "DATACORE_NATS_URL", "not a valid URL"},
		{"url without port", func(c *Config) { c.NATSURLs = []string{"nats://h"} }, "", ""},
		{"url without scheme", func(c *Config) { c.NATSURLs = []string{"h:4222"} }, "", ""},
		{"ipv6 url", func(c *Config) { c.NATSURLs = []string{"nats://[::1]:4222"} }, "", ""},
		{"ca not pem", func(c *Config) { c.NATSTLSCA = garbage }, "DATACORE_NATS_TLS_CA", "holds no PEM certificate"},
		{"ca valid", func(c *Config) { c.NATSTLSCA = pki.CAFile }, "", ""},
		{"nkey not a seed", func(c *Config) { c.NATSNKey = garbage }, "DATACORE_NATS_NKEY", "nkey seed file"},
		{"nkey is a certificate", func(c *Config) { c.NATSNKey = pki.CAFile }, "DATACORE_NATS_NKEY", "nkey seed file"},
		{"nkey valid", func(c *Config) { c.NATSNKey = nkey.SeedFile }, "", ""},
		{"creds garbage", func(c *Config) { c.NATSCreds = garbage }, "DATACORE_NATS_CREDS", "creds file"},
		{"creds is a seed only", func(c *Config) { c.NATSCreds = nkey.SeedFile }, "DATACORE_NATS_CREDS", "creds file"},
		{"creds valid", func(c *Config) { c.NATSCreds = creds }, "", ""},
		{"tls cert not pem", func(c *Config) { c.NATSTLSCert, c.NATSTLSKey = garbage, pki.ClientKey }, "DATACORE_NATS_TLS_CERT", "do not load as a pair"},
		{"tls key not pem", func(c *Config) { c.NATSTLSCert, c.NATSTLSKey = pki.ClientCert, garbage }, "DATACORE_NATS_TLS_KEY", "do not load as a pair"},
		{"tls key of another cert", func(c *Config) { c.NATSTLSCert, c.NATSTLSKey = pki.ClientCert, pki.ServerKey }, "DATACORE_NATS_TLS_KEY", "do not load as a pair"},
		{"tls pair valid", func(c *Config) { c.NATSTLSCert, c.NATSTLSKey = pki.ClientCert, pki.ClientKey }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.mutate(c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate = %v, want a *Error", err)
			}
			if ce.Var != tt.wantVar || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Validate = %q (Var %s), want Var %s and %q", err, ce.Var, tt.wantVar, tt.wantMsg)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line without the secret: %q", err)
			}
		})
	}
}
