package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/datacore-bridge/datacore-bridge/internal/logtest"
)

// logLines returns the non-empty lines of logs.
func logLines(logs *logtest.Buffer) []string {
	var out []string
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// TestHostileRequestsLogLittle sends requests built to grow the logs: what
// comes from the request is truncated, and a flood of refused requests logs
// one warning per kind, not one per request.
func TestHostileRequestsLogLittle(t *testing.T) {
	long := strings.Repeat("x", 60<<10)
	tests := []struct {
		name     string
		adminTok string
		n        int
		request  func(i int) *http.Request
		wantCode int
		wantMsg  string
		maxLines int
	}{
		{
			name: "unauthenticated 60 KB path", adminTok: testToken, n: 1, wantCode: http.StatusUnauthorized,
			wantMsg: "admin request refused", maxLines: 1,
			request: func(int) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/v1/fixtures/"+long, nil)
				r.Header.Set("User-Agent", long)
				return r
			},
		},
		{
			name: "admin API disabled, 60 KB path", n: 1, wantCode: http.StatusForbidden,
			wantMsg: "admin request refused", maxLines: 1,
			request: func(int) *http.Request { return httptest.NewRequest(http.MethodDelete, "/v1/venues/"+long, nil) },
		},
		{
			name: "1000 unauthorized calls", adminTok: testToken, n: 1000, wantCode: http.StatusUnauthorized,
			wantMsg: "admin request refused", maxLines: 1,
			request: func(i int) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/v1/fixtures/f"+strings.Repeat("y", i), nil)
				r.Header.Set("Authorization", "Bearer wrong")
				return r
			},
		},
		{
			name: "1000 refused ids", adminTok: testToken, n: 1000, wantCode: http.StatusBadRequest,
			wantMsg: "follow refused", maxLines: 1,
			request: func(i int) *http.Request {
				r := httptest.NewRequest(http.MethodPut, "/v1/fixtures/"+long[:i%300+257], nil)
				r.Header.Set("Authorization", "Bearer "+testToken)
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logtest.Buffer
			h := New(Options{Supervisor: newSupervisor(t, 0), AdminToken: tt.adminTok,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			for i := range tt.n {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, tt.request(i))
				if rec.Code != tt.wantCode {
					t.Fatalf("request %d: status %d, want %d", i, rec.Code, tt.wantCode)
				}
			}
			lines := logLines(&logs)
			if len(lines) == 0 || len(lines) > tt.maxLines {
				t.Fatalf("%d log lines for %d requests, want 1 to %d:\n%s", len(lines), tt.n, tt.maxLines, logs.String())
			}
			if logs.Count(tt.wantMsg) != len(lines) {
				t.Errorf("logs are not all %q: %s", tt.wantMsg, logs.String())
			}
			for _, l := range lines {
				if len(l) > 1024 {
					t.Errorf("log line of %d bytes, want under 1 KiB: %.300s…", len(l), l)
				}
				if !strings.Contains(l, `"level":"WARN"`) {
					t.Errorf("line is not a warning: %s", l)
				}
			}
		})
	}
}
