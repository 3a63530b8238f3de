package sink

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscapeToken(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "abc-123_X", want: "abc-123_X"},
		{name: "uuid", in: "3f1b0c2e-7a7d-11ee-b962-0242ac120002", want: "3f1b0c2e-7a7d-11ee-b962-0242ac120002"},
		{name: "empty", in: "", want: "%"},
		{name: "percent", in: "50%", want: "50%25"},
		{name: "dot", in: "a.b", want: "a%2Eb"},
		{name: "wildcards", in: "*>", want: "%2A%3E"},
		{name: "space", in: "a b", want: "a%20b"},
		{name: "controls", in: "\x00\t\n\r\x1f", want: "%00%09%0A%0D%1F"},
		{name: "del", in: "\x7f", want: "%7F"},
		{name: "punctuation kept", in: "a$b#c:d/e+f~g!", want: "a$b#c:d/e+f~g!"},
		{name: "utf8 kept", in: "Zürich-東京", want: "Zürich-東京"},
		{name: "replacement char kept", in: "\uFFFD", want: "\uFFFD"},
		{name: "invalid utf8", in: "a\xffb", want: "a%FFb"},
		{name: "truncated utf8", in: "\xe6\x9d", want: "%E6%9D"},
		{name: "surrogate", in: "\xed\xa0\x80", want: "%ED%A0%80"},
		{name: "c1 control", in: "\u0085", want: "%C2%85"},
		{name: "nbsp", in: "a\u00a0b", want: "a%C2%A0b"},
		{name: "ideographic space", in: "\u3000", want: "%E3%80%80"},
		{name: "zero width space", in: "\u200b", want: "%E2%80%8B"},
		{name: "bom", in: "\ufeff", want: "%EF%BB%BF"},
		{name: "line separator", in: "\u2028", want: "%E2%80%A8"},
		{name: "mixed", in: "ü.x", want: "ü%2Ex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EscapeToken(tt.in)
			if got != tt.want {
				t.Fatalf("EscapeToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := UnescapeToken(got)
			if err != nil {
				t.Fatalf("UnescapeToken(%q): %v", got, err)
			}
			if back != tt.in {
				t.Fatalf("UnescapeToken(%q) = %q, want %q", got, back, tt.in)
			}
		})
	}
}

func TestEscapeTokenNoAllocWhenPlain(t *testing.T) {
	s := "3f1b0c2e-7a7d-11ee-b962-0242ac120002"
	if n := testing.AllocsPerRun(100, func() { _ = EscapeToken(s) }); n != 0 {
		t.Fatalf("EscapeToken allocates %v times for a plain token", n)
	}
}

func TestUnescapeToken(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "plain", in: "abc", want: "abc"},
		{name: "lower hex", in: "a%2eb", want: "a.b"},
		{name: "empty marker", in: "%", want: ""},
		{name: "empty", in: "", wantErr: true},
		{name: "truncated", in: "ab%2", wantErr: true},
		{name: "percent at end", in: "ab%", wantErr: true},
		{name: "bad hex", in: "%zz", wantErr: true},
		{name: "raw dot", in: "a.b", wantErr: true},
		{name: "raw space", in: "a b", wantErr: true},
		{name: "raw wildcard", in: "*", wantErr: true},
		{name: "raw control", in: "a\nb", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := UnescapeToken(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("UnescapeToken(%q) = %q, %v; want ErrInvalidToken", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("UnescapeToken(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, s := range []string{"", "%", "%25", "a.b", "*", ">", " ", "\x00", "\x7f", "ü", "\xff", "\u00a0", "\u200b", "東京.*>", "%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapeToken(s)
		if e == "" {
			t.Fatalf("EscapeToken(%q) is empty", s)
		}
		for i := 0; i < len(e); i++ {
			if forbiddenInToken(e[i]) {
				t.Fatalf("EscapeToken(%q) = %q holds forbidden byte 0x%02X", s, e, e[i])
			}
		}
		if !utf8.ValidString(e) {
			t.Fatalf("EscapeToken(%q) = %q is not valid UTF-8", s, e)
		}
		back, err := UnescapeToken(e)
		if err != nil {
			t.Fatalf("UnescapeToken(EscapeToken(%q)): %v", s, err)
		}
		if back != s {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q", s, back)
		}
		// Whatever decodes must encode back to a token that decodes the same way.
		if u, err := UnescapeToken(s); err == nil {
			if again, err := UnescapeToken(EscapeToken(u)); err != nil || again != u {
				t.Fatalf("round trip of decoded %q: %q, %v", u, again, err)
			}
		}
	})
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		name    string
		prefix  string
		wantErr bool
	}{
		{name: "single", prefix: "datacore"},
		{name: "multi", prefix: "acme.prod.datacore"},
		{name: "dash and dollar", prefix: "acme-1.$x"},
		{name: "utf8", prefix: "données"},
		{name: "empty", prefix: "", wantErr: true},
		{name: "leading dot", prefix: ".datacore", wantErr: true},
		{name: "trailing dot", prefix: "datacore.", wantErr: true},
		{name: "double dot", prefix: "a..b", wantErr: true},
		{name: "star", prefix: "a.*", wantErr: true},
		{name: "gt", prefix: "a.>", wantErr: true},
		{name: "star inside", prefix: "a*b", wantErr: true},
		{name: "space", prefix: "a b", wantErr: true},
		{name: "tab", prefix: "a\tb", wantErr: true},
		{name: "del", prefix: "a\x7f", wantErr: true},
		{name: "no-break space", prefix: "a\u00a0b", wantErr: true},
		{name: "line separator", prefix: "a\u2028b", wantErr: true},
		{name: "c1 control", prefix: "a\u0085b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePrefix(tt.prefix)
			if tt.wantErr != (err != nil) {
				t.Fatalf("ValidatePrefix(%q) = %v, wantErr %v", tt.prefix, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidPrefix) {
				t.Fatalf("error %v does not wrap ErrInvalidPrefix", err)
			}
		})
	}
}

func TestKindFromScope(t *testing.T) {
	tests := []struct {
		name  string
		scope string
		want  string
	}{
		{name: "events", scope: "read:stream_events", want: "events"},
		{name: "catchup", scope: "read:stream_persons_catchup", want: "persons_catchup"},
		{name: "statistics periods", scope: "read:stream_statistics_periods", want: "statistics_periods"},
		{name: "response", scope: "read:response", want: "response"},
		{name: "no read prefix", scope: "stream_events", want: "events"},
		{name: "only first stream_", scope: "read:stream_stream_x", want: "stream_x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindFromScope(tt.scope); got != tt.want {
				t.Fatalf("KindFromScope(%q) = %q, want %q", tt.scope, got, tt.want)
			}
		})
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		name                                string
		prefix, sport, streamKind, id, kind string
		want                                string
	}{
		{name: "fixture", prefix: "datacore", sport: "basketball", streamKind: "fixture", id: "F1", kind: "events", want: "datacore.basketball.fixture.F1.events"},
		{name: "venue multi prefix", prefix: "acme.dc", sport: "basketball", streamKind: "venue", id: "V-9", kind: "scoreboard", want: "acme.dc.basketball.venue.V-9.scoreboard"},
		{name: "escaped id", prefix: "dc", sport: "ice hockey", streamKind: "fixture", id: "a.b*c", kind: "events", want: "dc.ice%20hockey.fixture.a%2Eb%2Ac.events"},
		{name: "empty id", prefix: "dc", sport: "b", streamKind: "fixture", id: "", kind: "events", want: "dc.b.fixture.%.events"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Subject(tt.prefix, tt.sport, tt.streamKind, tt.id, tt.kind)
			if got != tt.want {
				t.Fatalf("Subject = %q, want %q", got, tt.want)
			}
			toks := strings.Split(got, ".")
			n := len(strings.Split(tt.prefix, "."))
			if len(toks) != n+4 {
				t.Fatalf("Subject %q has %d tokens, want %d", got, len(toks), n+4)
			}
			if id, err := UnescapeToken(toks[n+2]); err != nil || id != tt.id {
				t.Fatalf("id token %q decodes to %q, %v; want %q", toks[n+2], id, err, tt.id)
			}
		})
	}
}

func TestSubjectCovers(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		sub    string
		want   bool
	}{
		{name: "same", filter: "dc.>", sub: "dc.>", want: true},
		{name: "full wildcard", filter: ">", sub: "dc.>", want: true},
		{name: "parent", filter: "acme.>", sub: "acme.dc.>", want: true},
		{name: "star", filter: "*.dc.>", sub: "acme.dc.>", want: true},
		{name: "narrower", filter: "dc.basketball.>", sub: "dc.>", want: false},
		{name: "literal", filter: "dc", sub: "dc.>", want: false},
		{name: "star does not cover gt", filter: "dc.*", sub: "dc.>", want: false},
		{name: "other", filter: "other.>", sub: "dc.>", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := subjectCovers(tt.filter, tt.sub); got != tt.want {
				t.Fatalf("subjectCovers(%q, %q) = %v, want %v", tt.filter, tt.sub, got, tt.want)
			}
		})
	}
}

// TestEscapeRoundTripRandom complements the fuzz test in plain test runs: random
// strings biased towards the bytes the rule cares about.
func TestEscapeRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "Z", "0", "-", "%", ".", "*", ">", " ", "\x00", "\x1f", "\x7f", "\x80", "\xff", "ü", "東", "\u00a0", "\u200b", "\ufeff", "\U0001F3C0", "\xed\xa0\x80"}
	for range 5000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := b.String()
		e := EscapeToken(s)
		for i := 0; i < len(e); i++ {
			if forbiddenInToken(e[i]) {
				t.Fatalf("EscapeToken(%q) = %q holds a forbidden byte", s, e)
			}
		}
		if back, err := UnescapeToken(e); err != nil || back != s {
			t.Fatalf("UnescapeToken(EscapeToken(%q)) = %q, %v", s, back, err)
		}
	}
}
