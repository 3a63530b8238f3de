package sink

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// emptyToken is the escaped form of the empty string. Escaping never produces a lone
// '%' for any other input, because a literal '%' is always written as "%25".
const emptyToken = "%"

const upperHex = "0123456789ABCDEF"

// EscapeToken turns s into one NATS subject token by a reversible, percent-style rule.
//
// A byte is written as "%XX" (two upper-case hex digits) when it is:
//   - '%' itself;
//   - an ASCII control character (0x00-0x1F), space or DEL (0x7F);
//   - '.', '*' or '>' (the token separator and the wildcards);
//   - part of an invalid UTF-8 sequence;
//   - part of a valid UTF-8 sequence that encodes an invisible rune: a C1 control
//     (U+0080-U+009F), a Unicode White_Space character (U+00A0, U+1680, U+2000-U+200A,
//     U+2028, U+2029, U+202F, U+205F, U+3000) or a format/zero-width character (U+00AD,
//     U+061C, U+180E, U+200B-U+200F, U+202A-U+202E, U+2060-U+206F, U+FEFF,
//     U+FFF9-U+FFFB, U+FFFE, U+FFFF, U+E0000-U+E007F).
//
// Every other byte, including printable non-ASCII UTF-8, is kept as is, so IDs stay
// readable. The set above is fixed (it does not follow the Unicode tables of the Go
// release), so a given input always maps to the same subject. The empty string is
// escaped to "%", which no other input produces. Strings that need no escaping are
// returned unchanged without allocating.
func EscapeToken(s string) string {
	if s == "" {
		return emptyToken
	}
	i := firstEscape(s)
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII(c) {
				b.WriteByte(c)
			} else {
				writePercent(&b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !keepRune(r) {
			for j := 0; j < n; j++ {
				writePercent(&b, s[i+j])
			}
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// UnescapeToken reverses [EscapeToken]: UnescapeToken(EscapeToken(s)) == s for every s.
// It accepts upper- or lower-case hex digits. It fails with [ErrInvalidToken] when t is
// empty, holds a malformed escape ('%' not followed by two hex digits, except the lone
// "%" that stands for the empty string) or a raw byte that NATS does not allow in a
// token (control characters, space, DEL, '.', '*', '>').
func UnescapeToken(t string) (string, error) {
	if t == "" {
		return "", fmt.Errorf("%w: empty token", ErrInvalidToken)
	}
	if t == emptyToken {
		return "", nil
	}
	pct := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c == '%' {
			pct++
			continue
		}
		if forbiddenInToken(c) {
			return "", fmt.Errorf("%w: byte 0x%02X at offset %d", ErrInvalidToken, c, i)
		}
	}
	if pct == 0 {
		return t, nil
	}
	out := make([]byte, 0, max(len(t)-2*pct, 0))
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+2 >= len(t) {
			return "", fmt.Errorf("%w: truncated escape at offset %d", ErrInvalidToken, i)
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: bad escape at offset %d", ErrInvalidToken, i)
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return string(out), nil
}

// ValidatePrefix reports whether prefix can start a subject: one or more dot-separated
// tokens, each non-empty and free of wildcards ('*', '>'), whitespace (Unicode's too),
// control characters and DEL. It is the one rule for a prefix: config applies it to
// its variable. The error wraps [ErrInvalidPrefix].
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("%w: empty", ErrInvalidPrefix)
	}
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" {
			return fmt.Errorf("%w: %q has an empty token", ErrInvalidPrefix, prefix)
		}
		for _, r := range tok {
			if r <= ' ' || r == 0x7F || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
				return fmt.Errorf("%w: %q contains %U", ErrInvalidPrefix, prefix, r)
			}
		}
	}
	return nil
}

// KindFromScope derives the subject's <kind> token from a topic scope: it drops a
// leading "read:" and then a leading "stream_" ("read:stream_events" -> "events",
// "read:stream_persons_catchup" -> "persons_catchup", "read:response" -> "response").
// The result is not escaped.
func KindFromScope(scope string) string {
	return strings.TrimPrefix(strings.TrimPrefix(scope, "read:"), "stream_")
}

// Subject builds <prefix>.<sport>.<streamKind>.<id>.<kind>, escaping every token after
// the prefix with [EscapeToken]. prefix must have passed [ValidatePrefix]; kind is
// usually KindFromScope(scope).
func Subject(prefix, sport, streamKind, id, kind string) string {
	return prefix + "." + EscapeToken(sport) + "." + EscapeToken(streamKind) + "." +
		EscapeToken(id) + "." + EscapeToken(kind)
}

// firstEscape returns the offset of the first byte that EscapeToken must look at more
// closely (a byte to escape or a non-ASCII byte), or len(s).
func firstEscape(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !plainASCII(c) {
			if c < utf8.RuneSelf {
				return i
			}
			return firstRuneEscape(s, i)
		}
	}
	return len(s)
}

// firstRuneEscape continues firstEscape from offset i, which holds a non-ASCII byte.
func firstRuneEscape(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if !plainASCII(c) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || !keepRune(r) {
			return i
		}
		i += n
	}
	return len(s)
}

// plainASCII reports whether the ASCII byte c is written as is.
func plainASCII(c byte) bool {
	return c > ' ' && c < 0x7F && c != '%' && c != '.' && c != '*' && c != '>'
}

// forbiddenInToken reports whether NATS does not allow the raw byte c in a token.
func forbiddenInToken(c byte) bool {
	return c <= ' ' || c == 0x7F || c == '.' || c == '*' || c == '>'
}

// keepRune reports whether the non-ASCII rune r is written as is (see EscapeToken).
func keepRune(r rune) bool {
	switch {
	case r <= 0xA0: // C1 controls, NEL, NO-BREAK SPACE
		return false
	case r == 0xAD, r == 0x61C, r == 0x1680, r == 0x180E:
		return false
	case r >= 0x2000 && r <= 0x200F:
		return false
	case r >= 0x2028 && r <= 0x202F:
		return false
	case r >= 0x205F && r <= 0x206F:
		return false
	case r == 0x3000, r == 0xFEFF:
		return false
	case r >= 0xFFF9 && r <= 0xFFFB, r == 0xFFFE, r == 0xFFFF:
		return false
	case r >= 0xE0000 && r <= 0xE007F:
		return false
	}
	return true
}

func writePercent(b *strings.Builder, c byte) {
	b.WriteByte('%')
	b.WriteByte(upperHex[c>>4])
	b.WriteByte(upperHex[c&0x0F])
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
