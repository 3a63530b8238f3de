package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"unicode"

	"github.com/datacore-bridge/datacore-bridge/access"
)

// MaxReplicas is the most processes that may follow one fixture or venue at once.
const MaxReplicas = 5

// MaxNameLength is the longest cluster or instance name, in bytes.
const MaxNameLength = 64

// tokenRE matches a name or an ID that is a KV key token as it is.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidateName reports why s cannot name a cluster or an instance: a name is
// 1 to MaxNameLength letters, digits, '-' and '_', so that it is one token of
// a KV bucket name or key.
func ValidateName(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > MaxNameLength:
		return fmt.Errorf("must be at most %d characters, got %d", MaxNameLength, len(s))
	case !tokenRE.MatchString(s):
		return fmt.Errorf("must hold only letters, digits, '-' and '_', got %q", s)
	}
	return nil
}

// FollowedBucket is the KV bucket that holds a cluster's followed set: one key
// per fixture or venue (see FollowedKey), kept until deleted.
func FollowedBucket(cluster string) string { return "datacore-" + cluster + "-followed" }

// LeasesBucket is the KV bucket that holds a cluster's members, leases and
// discovery leader. Its TTL is the lease TTL: a key not renewed expires.
func LeasesBucket(cluster string) string { return "datacore-" + cluster + "-leases" }

// Key prefixes in the leases bucket.
const (
	memberPrefix = "member."
	ownerPrefix  = "owner."
	leaderKey    = "leader.discovery"
)

// FollowedKey is the key of a fixture or venue in the followed bucket:
// "fixture.<id>" or "venue.<id>", with the ID encoded by IDToken.
func FollowedKey(kind access.Kind, id string) string {
	return string(kind) + "." + IDToken(id)
}

// parseFollowedKey is the inverse of FollowedKey.
func parseFollowedKey(key string) (ID, bool) {
	kind, tok, ok := strings.Cut(key, ".")
	if !ok || (kind != string(access.Fixture) && kind != string(access.Venue)) {
		return ID{}, false
	}
	id, ok := ParseIDToken(tok)
	if !ok {
		return ID{}, false
	}
	return ID{Kind: access.Kind(kind), ID: id}, true
}

// IDToken encodes a fixture or venue ID as one KV key token. An ID of only
// letters, digits, '-' and '_' (a UUID, for one) is its own token; any other
// is '=' followed by its bytes in unpadded base64url. '=' is not in the first
// alphabet, so the rule is reversible (ParseIDToken).
func IDToken(id string) string {
	if tokenRE.MatchString(id) {
		return id
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// ParseIDToken is the inverse of IDToken.
func ParseIDToken(tok string) (string, bool) {
	if enc, ok := strings.CutPrefix(tok, "="); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || len(b) == 0 {
			return "", false
		}
		return string(b), true
	}
	if !tokenRE.MatchString(tok) {
		return "", false
	}
	return tok, true
}

func memberKey(instance string) string { return memberPrefix + instance }

// ownerKey is the lease of instance on a fixture or venue:
// "owner.<kind>.<id token>.<instance>".
func ownerKey(id ID, instance string) string {
	return ownerPrefix + FollowedKey(id.Kind, id.ID) + "." + instance
}

// parseOwnerKey returns the followed key and the instance of an owner key.
func parseOwnerKey(key string) (followed, instance string, ok bool) {
	rest, ok := strings.CutPrefix(key, ownerPrefix)
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// DefaultInstance is a member name for this process: the host name (its
// first label, with characters a name cannot hold replaced by '-') and a
// random suffix, so that a restarted process is a new member.
func DefaultInstance() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	host = strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return r
		}
		return '-'
	}, host)
	if host == "" {
		host = "bridge"
	}
	if len(host) > MaxNameLength-7 {
		host = host[:MaxNameLength-7]
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// randomToken is 12 random hex digits.
func randomToken() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
