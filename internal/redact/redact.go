// Package redact removes secrets from text that is logged or returned in an
// error: the user information of a URL (a NATS password or token), a signed
// URL's query (X-Amz-Signature, X-Amz-Security-Token, X-Amz-Credential) and
// known secret values in whatever escaping they were quoted. It is the one
// place these rules live; every package that logs a URL or quotes foreign
// error text uses it.
package redact

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// URLMark replaces the user information of a URL in what URL returns, and a
// secret that is set wherever a configuration is shown.
const URLMark = "[set]"

// Mark replaces each secret value in what Secrets and SignedQuery return.
const Mark = "[REDACTED]"

// URL returns s with its user information, if any, replaced by URLMark: a
// token alone (nats://TOKEN@host), a user, or a user and password. In a
// string that does not parse as a URL, everything between "://" (or the
// start) and the last '@' is replaced the same way. Use it for every URL that
// is logged or quoted in an error.
func URL(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err == nil && u.User == nil {
		return s
	}
	if err != nil {
		i := strings.LastIndex(s, "@")
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + URLMark + s[i:]
		}
		return URLMark + s[i:]
	}
	u.User = nil
	out := u.String()
	if j := strings.Index(out, "://"); j >= 0 {
		return out[:j+3] + URLMark + "@" + out[j+3:]
	}
	return URLMark + "@" + out
}

// amzParam matches a signed URL's X-Amz-* query parameter and its value.
var amzParam = regexp.MustCompile(`(?i)(X-Amz-[A-Za-z-]+=)[^&\s"']*`)

// SignedQuery returns s with the value of every X-Amz-* query parameter
// (a presigned URL's signature, security token, credential, ...) replaced by
// Mark, wherever such a parameter appears in the text.
func SignedQuery(s string) string {
	return amzParam.ReplaceAllString(s, "${1}"+Mark)
}

// Secrets is a set of secret values to remove from text. The zero value
// removes nothing. It is safe for concurrent use once built.
type Secrets struct {
	list []string // every form of every secret, longest first
}

// NewSecrets returns the set of values, each also in its query-, path- and
// JSON-escaped forms and, when it is escaped, its unescaped form. Empty
// values are ignored.
func NewSecrets(values ...string) Secrets {
	var s Secrets
	for _, v := range values {
		s.add(v, 1)
	}
	s.sort()
	return s
}

// SignedURL returns the set of secrets of a signed URL: its raw query, every
// query value (raw, decoded and re-encoded), its fragment and its user
// information. Values shorter than 4 bytes (X-Amz-Expires=60) are too short
// to be secrets and would mangle ordinary text, so they are left alone.
func SignedURL(u *url.URL) Secrets {
	var s Secrets
	const minLen = 4
	s.addRaw(u.RawQuery, minLen)
	if dec, err := url.QueryUnescape(u.RawQuery); err == nil {
		s.addRaw(dec, minLen)
	}
	for part := range strings.SplitSeq(u.RawQuery, "&") {
		_, raw, _ := strings.Cut(part, "=")
		s.add(raw, minLen)
	}
	s.addRaw(u.Fragment, minLen)
	if u.User != nil {
		s.addRaw(u.User.String(), minLen)
	}
	s.sort()
	return s
}

// SignedURLString is SignedURL for a URL that may not parse: everything after
// the first '?' is taken as the query.
func SignedURLString(raw string) Secrets {
	if u, err := url.Parse(raw); err == nil {
		return SignedURL(u)
	}
	_, q, _ := strings.Cut(raw, "?")
	return SignedURL(&url.URL{RawQuery: q})
}

// add adds v in every form it may be quoted in. A decoded form shorter than
// 4 bytes is left out: it is not the secret as set and would mangle text.
func (s *Secrets) add(v string, minLen int) {
	s.addRaw(v, minLen)
	if d, err := url.QueryUnescape(v); err == nil {
		s.addRaw(d, max(minLen, 4))
		s.addRaw(url.QueryEscape(d), minLen)
		s.addRaw(url.PathEscape(d), minLen)
	}
	if d, err := url.PathUnescape(v); err == nil {
		s.addRaw(d, max(minLen, 4))
	}
	s.addRaw(url.QueryEscape(v), minLen)
	s.addRaw(url.PathEscape(v), minLen)
	if j, err := json.Marshal(v); err == nil {
		s.addRaw(string(j[1:len(j)-1]), minLen)
	}
}

// addRaw adds v as it is, once.
func (s *Secrets) addRaw(v string, minLen int) {
	if v == "" || len(v) < minLen || slices.Contains(s.list, v) {
		return
	}
	s.list = append(s.list, v)
}

// sort puts the longest first, so that a secret inside a longer one (a value
// inside the raw query) does not leave the rest of the longer one behind.
func (s *Secrets) sort() {
	slices.SortStableFunc(s.list, func(a, b string) int { return len(b) - len(a) })
}

// Merge returns the union of s and others.
func (s Secrets) Merge(others ...Secrets) Secrets {
	out := Secrets{list: slices.Clone(s.list)}
	for _, o := range others {
		for _, v := range o.list {
			out.addRaw(v, 1)
		}
	}
	out.sort()
	return out
}

// String returns text with every secret replaced by Mark.
func (s Secrets) String(text string) string {
	for _, v := range s.list {
		if strings.Contains(text, v) {
			text = strings.ReplaceAll(text, v, Mark)
		}
	}
	return text
}

// Err returns err unchanged when its text holds no secret, else an error
// whose text has every secret replaced by Mark and that still unwraps to err
// (errors.Is and errors.As keep working).
func (s Secrets) Err(err error) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if clean := s.String(text); clean != text {
		return &redactedError{text: clean, err: err}
	}
	return err
}

// redactedError is an error whose text had secrets removed.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }
