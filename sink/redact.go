package sink

import (
	"net/url"
	"strings"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// secretsOf lists the credentials o holds in clear, for redact.NewSecrets: the
// token, the password and the user information of each server URL (whole, and its
// token or password apart, also percent-decoded).
func (o ConnectOptions) secretsOf() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	add(o.Token)
	add(o.Password)
	for _, raw := range splitURLs(o.URLs) {
		at := strings.LastIndex(raw, "@")
		if at < 0 {
			continue
		}
		info := raw[:at]
		if j := strings.Index(info, "://"); j >= 0 {
			info = info[j+3:]
		}
		add(info)
		// nats://TOKEN@host or nats://user:password@host: the user name alone is
		// not a secret.
		secret := info
		if _, pass, ok := strings.Cut(info, ":"); ok {
			secret = pass
		}
		add(secret)
		if d, err := url.PathUnescape(secret); err == nil {
			add(d)
		}
	}
	return out
}

// scrubber removes credentials from error texts before they are logged or returned.
type scrubber = redact.Secrets
