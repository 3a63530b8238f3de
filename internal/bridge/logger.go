package bridge

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger builds the slog logger that a level (debug, info, warn, error)
// and a format (json, text) ask for, writing to w.
func NewLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("DATACORE_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("DATACORE_LOG_FORMAT: must be json or text, got %q", format)
}
