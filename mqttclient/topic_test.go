package mqttclient

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTopic(t *testing.T) {
	tests := []struct {
		name  string
		topic string
		ok    bool
	}{
		{name: "opaque topic", topic: "s/b/b1te1/sr:match:1/r/e", ok: true},
		{name: "single level", topic: "t", ok: true},
		{name: "empty", topic: ""},
		{name: "multi-level wildcard", topic: "s/b/b1te1/#"},
		{name: "bare hash", topic: "#"},
		{name: "single-level wildcard", topic: "s/b/+/sr:match:1/r/e"},
		{name: "plus inside a level", topic: "s/b/a+b/r/e"},
		{name: "NUL", topic: "s/b\x00/r/e"},
		{name: "too long", topic: strings.Repeat("a", 65536)},
		{name: "longest allowed", topic: strings.Repeat("a", 65535), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTopic(tt.topic)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckTopic = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidTopic) {
				t.Errorf("error %v does not wrap ErrInvalidTopic", err)
			}
		})
	}
}

func TestCheckQoS(t *testing.T) {
	tests := []struct {
		name string
		qos  int
		ok   bool
	}{
		{name: "at most once", qos: 0, ok: true},
		{name: "at least once", qos: 1, ok: true},
		{name: "exactly once", qos: 2},
		{name: "negative", qos: -1},
		{name: "past a byte", qos: 257},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckQoS(tt.qos)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckQoS(%d) = %v", tt.qos, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidQoS) || !strings.Contains(err.Error(), "want 0 or 1") {
				t.Fatalf("CheckQoS(%d) = %v, want ErrInvalidQoS saying what is wanted", tt.qos, err)
			}
		})
	}
}
