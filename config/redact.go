package config

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/datacore-bridge/datacore-bridge/internal/redact"
)

// redactedMark replaces a secret that is set (the same mark as in redacted URLs).
const redactedMark = redact.URLMark

// Redacted returns a copy of c that is safe to log: every secret that is set is
// replaced by "[set]", and user information in URLs (which may hold a NATS
// password or token) is replaced the same way.
func (c Config) Redacted() Config {
	r := c
	v := reflect.ValueOf(&r).Elem()
	for _, f := range fields() {
		if f.secret {
			fv := v.FieldByIndex(f.field.Index)
			if fv.String() != "" {
				fv.SetString(redactedMark)
			}
		}
	}
	r.APIURL = redact.URL(r.APIURL)
	r.OAuthTokenURL = redact.URL(r.OAuthTokenURL)
	r.NATSURLs = make([]string, len(c.NATSURLs))
	for i, u := range c.NATSURLs {
		r.NATSURLs[i] = redact.URL(u)
	}
	return r
}

// LogValue implements slog.LogValuer: the effective configuration as a group
// keyed by variable name, with secrets replaced by "[set]". Logging a Config or
// a *Config therefore never reveals a secret.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	v := reflect.ValueOf(r)
	attrs := make([]slog.Attr, 0, len(fields()))
	for _, f := range fields() {
		switch x := v.FieldByIndex(f.field.Index).Interface().(type) {
		case time.Duration:
			attrs = append(attrs, slog.String(f.name, x.String())) // "15m0s", not nanoseconds
		default:
			attrs = append(attrs, slog.Any(f.name, x))
		}
	}
	return slog.GroupValue(attrs...)
}

// String returns the redacted configuration, so that printing a Config with
// fmt never reveals a secret.
func (c Config) String() string {
	r := c.Redacted()
	v := reflect.ValueOf(r)
	var b strings.Builder
	for i, f := range fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", f.name, v.FieldByIndex(f.field.Index).Interface())
	}
	return b.String()
}
