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
  datacore-bridge demo [-h]    run the local Datacore emulator, an embedded NATS server and the bridge
  datacore-bridge bench [-h]   measure throughput, latency, idle-stream cost and rotation with the emulator and an embedded NATS server
  datacore-bridge healthcheck  exit 0 when the bridge on this host answers /healthz (for container HEALTHCHECK)
  datacore-bridge -h           this help

Environment variables:
`)
	_ = config.Usage(w)
}
