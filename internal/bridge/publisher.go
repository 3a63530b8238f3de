package bridge

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/metrics"
	"github.com/datacore-bridge/datacore-bridge/sink"
)

// publisher is the configured sink.Publisher with what the bridge needs to
// report its health and to stop it.
type publisher struct {
	sink.Publisher
	ready  func() error                // the connection, then publishing
	close  func(context.Context) error // stop taking messages and settle what is in flight
	ensure *sink.StreamEnsurer         // with DATACORE_STREAM; nil otherwise
}

// newPublisher builds the JetStream or the core publisher on nc.
func newPublisher(cfg *config.Config, nc *nats.Conn, log *slog.Logger, m *metrics.Metrics) (*publisher, error) {
	if !cfg.JetStream {
		return newCorePublisher(nc, log, m), nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p := &publisher{}
	hint := "set DATACORE_STREAM or create a stream over " + cfg.SubjectPrefix + ".>"
	if cfg.Stream != "" {
		hint = "the stream " + cfg.Stream + " (DATACORE_STREAM) should capture " + cfg.SubjectPrefix + ".>: check that it was not deleted or changed"
		// NATS may be away or refusing credentials at start: the stream is
		// ensured in the background and /readyz says so until it is.
		p.ensure = sink.NewStreamEnsurer(js, sink.StreamEnsurerOptions{
			Stream: cfg.Stream,
			Prefix: cfg.SubjectPrefix,
			Hint:   "check DATACORE_STREAM, DATACORE_SUBJECT_PREFIX and the account's JetStream limits",
			Logger: log,
		})
	}
	jp, err := sink.NewJetStream(nc, sink.JetStreamOptions{
		MaxPending:   cfg.MaxInflight,
		Logger:       log.With("component", "jetstream"),
		OnRetry:      m.PublishRetries.Inc,
		NoStreamHint: hint,
	})
	if err != nil {
		return nil, err
	}
	p.Publisher, p.ready, p.close = jp, jp.Ready, jp.Close
	return p, nil
}

// newCorePublisher builds the core NATS publisher on nc.
func newCorePublisher(nc *nats.Conn, log *slog.Logger, m *metrics.Metrics) *publisher {
	cp := sink.NewCore(nc, sink.CoreOptions{Logger: log.With("component", "nats"), OnRetry: m.PublishRetries.Inc})
	return &publisher{Publisher: cp, ready: cp.Ready, close: func(ctx context.Context) error {
		defer cp.Close()
		if !nc.IsConnected() {
			// Nothing can be flushed; what nats.go buffered for the
			// reconnect is lost with the connection.
			n := sink.Buffered(nc)
			log.Warn("NATS is not connected at shutdown; messages buffered for the reconnect are lost",
				"buffered_bytes", n)
			if n > 0 {
				return fmt.Errorf("%w: %d bytes buffered for the reconnect", sink.ErrAbandoned, n)
			}
			return nil
		}
		return cp.Flush(ctx)
	}}
}
