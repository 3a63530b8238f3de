// Package logtest holds what tests need to read the logs of the code under test.
package logtest

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer that is safe for concurrent writers, for use as
// the output of a slog handler in tests.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many JSON log lines have the given msg.
func (b *Buffer) Count(msg string) int {
	return strings.Count(b.String(), `"msg":`+strconv.Quote(msg))
}
