package sink

import (
	"net/url"
	"strings"
)

// RedactedMark replaces the user information of a URL in what RedactURL returns.
const RedactedMark = "[set]"

// RedactURL returns s with its user information, if any, replaced by RedactedMark:
// a token alone (nats://TOKEN@host), a user, or a user and password. nats.go's own
// redaction masks only the password. In a string that does not parse as a URL,
// everything between "://" (or the start) and the last '@' is replaced the same way.
// Use it for every URL that is logged or quoted in an error.
func RedactURL(s string) string {
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
			return s[:j+3] + RedactedMark + s[i:]
		}
		return RedactedMark + s[i:]
	}
	u.User = nil
	out := u.String()
	if j := strings.Index(out, "://"); j >= 0 {
		return out[:j+3] + RedactedMark + "@" + out[j+3:]
	}
	return RedactedMark + "@" + out
}

// secretsOf lists the credentials o holds in clear: the token, the password and
// the user information of each server URL (whole, and its token or password apart,
// also percent-decoded), longest first so that a replacer removes the whole of each.
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
	// Longest first: a replacer tries the old strings in argument order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// scrubber removes credentials from error texts before they are logged or returned.
type scrubber struct{ r *strings.Replacer }

func newScrubber(secrets []string) scrubber {
	if len(secrets) == 0 {
		return scrubber{}
	}
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, RedactedMark)
	}
	return scrubber{r: strings.NewReplacer(pairs...)}
}

// err returns err with every credential in its text replaced by RedactedMark; it
// still matches what err matches with errors.Is and errors.As.
func (s scrubber) err(err error) error {
	if err == nil || s.r == nil {
		return err
	}
	text := err.Error()
	clean := s.r.Replace(text)
	if clean == text {
		return err
	}
	return &scrubbedError{text: clean, err: err}
}

// scrubbedError is an error whose text had credentials removed.
type scrubbedError struct {
	text string
	err  error
}

func (e *scrubbedError) Error() string { return e.text }
func (e *scrubbedError) Unwrap() error { return e.err }
