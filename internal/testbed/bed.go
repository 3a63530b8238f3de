package testbed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/datacore-bridge/datacore-bridge/config"
	"github.com/datacore-bridge/datacore-bridge/internal/bridge"
	"github.com/datacore-bridge/datacore-bridge/sim"
)

// The emulator's credentials when Options.Sim names none.
const (
	CredentialID     = "testbed-credential"
	CredentialSecret = "testbed-secret-3e1c9a"
)

// StreamName is the JetStream stream the bridge ensures in JetStream mode.
const StreamName = "DATACORE"

// Options say what to run. The zero value is the emulator with no fixture,
// a core NATS server and a bridge with its HTTP API on a random port.
type Options struct {
	// Sim configures the emulator; credentials default to CredentialID and
	// CredentialSecret. Ignored when APIURL is set.
	Sim sim.Options
	// APIURL is an emulator that already runs (e.g. in another process);
	// empty: start one with Sim.
	APIURL string
	// JetStream runs NATS with JetStream and the bridge in JetStream mode,
	// ensuring StreamName.
	JetStream bool
	// NATS changes the embedded server's options (see NATSOptions) before it starts.
	NATS func(*server.Options)
	// Configure changes the bridge's configuration before it is validated.
	Configure func(*config.Config)
	// Bridge holds the bridge's settings that no variable exposes.
	Bridge bridge.Options
	// Logger receives the emulator's and the bridge's logs; nil: discarded.
	Logger *slog.Logger
}

// Bed is a running emulator, NATS server and bridge.
type Bed struct {
	Emulator *sim.Server // nil when Options.APIURL was set
	NATS     *NATS
	Config   *config.Config
	Bridge   *bridge.Bridge
}

// StartEmulator starts the emulator with o, its credentials defaulting to
// CredentialID and CredentialSecret.
func StartEmulator(ctx context.Context, o sim.Options) (*sim.Server, error) {
	if o.CredentialID == "" && o.UserIdentityToken == "" {
		o.CredentialID, o.CredentialSecret = CredentialID, CredentialSecret
	}
	s, err := sim.Start(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return s, nil
}

// Config is the bridge's configuration for an emulator at apiURL with the
// credentials of o and NATS at natsURL: the defaults, the HTTP API on a
// random port of 127.0.0.1 and, with jetStream, StreamName.
func Config(apiURL string, o sim.Options, natsURL string, jetStream bool) *config.Config {
	cfg := config.Defaults()
	cfg.APIURL = apiURL
	cfg.CredentialID, cfg.CredentialSecret = o.CredentialID, o.CredentialSecret
	if cfg.CredentialID == "" && o.UserIdentityToken == "" {
		cfg.CredentialID, cfg.CredentialSecret = CredentialID, CredentialSecret
	}
	cfg.NATSURLs = []string{natsURL}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.JetStream = jetStream
	if jetStream {
		cfg.Stream = StreamName
	}
	return cfg
}

// Start starts the emulator (unless o.APIURL is set), NATS and the bridge.
// ctx bounds the start. On error nothing is left running.
func Start(ctx context.Context, o Options) (_ *Bed, err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bed := &Bed{}
	defer func() {
		if err != nil {
			_ = bed.Close()
		}
	}()
	apiURL := o.APIURL
	if apiURL == "" {
		if bed.Emulator, err = StartEmulator(ctx, withLogger(o.Sim, log)); err != nil {
			return nil, err
		}
		apiURL = bed.Emulator.APIURL()
	}
	nopts := NATSOptions(o.JetStream)
	if o.NATS != nil {
		o.NATS(&nopts)
	}
	if bed.NATS, err = StartNATS(nopts); err != nil {
		return nil, err
	}
	cfg := Config(apiURL, o.Sim, bed.NATS.ClientURL(), o.JetStream)
	if bed.Emulator != nil {
		cfg.RESTURL = bed.Emulator.RESTURL() // used when Configure sets Organizations
	}
	if o.Configure != nil {
		o.Configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	bed.Config = cfg
	if bed.Bridge, err = bridge.Start(ctx, cfg, log, o.Bridge); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	return bed, nil
}

// withLogger gives the emulator log (as component "emulator") unless o has a logger.
func withLogger(o sim.Options, log *slog.Logger) sim.Options {
	if o.Logger == nil {
		o.Logger = log.With("component", "emulator")
	}
	return o
}

// Close shuts the bridge down (see bridge.Bridge.Shutdown), then NATS and the
// emulator, and returns the bridge's shutdown error.
func (b *Bed) Close() error {
	var errs []error
	if b.Bridge != nil {
		errs = append(errs, b.Bridge.Shutdown(context.Background()))
	}
	if b.NATS != nil {
		b.NATS.Close()
	}
	if b.Emulator != nil {
		errs = append(errs, b.Emulator.Close())
	}
	return errors.Join(errs...)
}
