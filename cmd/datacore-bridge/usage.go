package main

import (
	"fmt"
	"io"

	"github.com/datacore-bridge/datacore-bridge/config"
)

func usage(w io.Writer) {
	fmt.Fprint(w, `datacore-bridge follows Datacore fixtures and venues and republishes every message to NATS.

Usage:
  datacore-bridge              run the bridge, configured by the variables below
  datacore-bridge healthcheck  exit 0 when the bridge on this host answers /healthz (for container HEALTHCHECK)
  datacore-bridge -h           this help

The local emulator demo and the benchmark are separate commands:
  go run ./cmd/datacore-demo -h
  go run ./cmd/datacore-bench -h

`)
	_ = config.Usage(w)
}
