package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector the bridge exports. A nil *Metrics is not valid;
// use New, or Discard in code that does not export metrics.
type Metrics struct {
	// Registry is where the collectors are registered.
	Registry *prometheus.Registry

	// Received counts MQTT messages received, by stream kind and message kind.
	Received *prometheus.CounterVec
	// Published counts messages NATS accepted (core) or acknowledged (JetStream).
	Published *prometheus.CounterVec
	// PublishErrors counts publishes that failed for good.
	PublishErrors prometheus.Counter
	// PublishRetries counts publishes sent again (JetStream: same message id; core: after
	// waiting for the connection).
	PublishRetries prometheus.Counter
	// Dropped counts messages the bridge received but did not publish, by reason.
	Dropped *prometheus.CounterVec
	// Duplicates counts messages suppressed because they were seen already.
	Duplicates *prometheus.CounterVec
	// AccessCalls counts access API calls, by outcome.
	AccessCalls *prometheus.CounterVec
	// Grants counts grants obtained.
	Grants prometheus.Counter
	// Rotations counts make-before-break rotations, by result.
	Rotations *prometheus.CounterVec
	// Reconnects counts connections re-established, by reason.
	Reconnects *prometheus.CounterVec
	// Connects counts MQTT connection attempts, by result.
	Connects *prometheus.CounterVec
	// Streams is the number of followed streams, by state.
	Streams *prometheus.GaugeVec
	// Latency observes MQTT receipt to NATS publish settled, in seconds.
	Latency prometheus.Histogram
	// Inflight is the number of messages received and not yet settled in NATS.
	Inflight prometheus.Gauge
	// InflightLimit is the configured bound on Inflight.
	InflightLimit prometheus.Gauge
	// FixturesFinished counts fixtures no longer followed because their status became final.
	FixturesFinished prometheus.Counter
	// DecompressErrors counts compressedData payloads that could not be inflated.
	DecompressErrors prometheus.Counter
	// DecompressSkipped counts compressedData payloads published untouched
	// because, inflated, they would exceed the NATS server's max payload.
	DecompressSkipped prometheus.Counter
	// NATSConnected is 1 while the NATS connection is up.
	NATSConnected prometheus.Gauge
	// DiscoveryRuns counts organization discovery polls, by outcome.
	DiscoveryRuns *prometheus.CounterVec
	// DiscoveredFixtures is the number of fixtures discovery has followed.
	DiscoveredFixtures prometheus.Gauge

	// ClusterMembers is the number of live cluster members this process sees, itself included.
	ClusterMembers prometheus.Gauge
	// ClusterFollowed is the number of IDs in the cluster's followed set, by kind.
	ClusterFollowed *prometheus.GaugeVec
	// ClusterLeases is the number of leases this process holds (streams it owns).
	ClusterLeases prometheus.Gauge
	// ClusterHandovers counts streams that changed owner, by reason.
	ClusterHandovers *prometheus.CounterVec
	// ClusterFailover observes how long a stream was without its lost owner.
	ClusterFailover prometheus.Histogram
	// ClusterKVReady is 1 while this process renews its membership in KV.
	ClusterKVReady prometheus.Gauge
	// ClusterKVOps counts key-value operations, by operation and outcome.
	ClusterKVOps *prometheus.CounterVec
	// ClusterLeader is 1 while this process runs organization discovery for the cluster.
	ClusterLeader prometheus.Gauge
}

// New returns Metrics registered on a fresh registry, together with the Go runtime
// and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := build()
	m.Registry = reg
	reg.MustRegister(m.collectors()...)
	m.initLabels()
	return m
}

// initLabels creates every series of the fixed label sets at zero, so that
// they are exported (and rate() works) before the first event.
func (m *Metrics) initLabels() {
	for vec, values := range map[*prometheus.CounterVec][]string{
		m.Dropped:          {"publish_error", "too_large", "rejected", "shutdown", "unknown_topic"},
		m.Duplicates:       {"fixture", "venue"},
		m.AccessCalls:      {"ok", "unauthorized", "forbidden", "not_found", "bad_request", "rate_limited", "server_error", "malformed", "transport", "expired"},
		m.Rotations:        {"ok", "failed"},
		m.Reconnects:       {"lost", "expired"},
		m.Connects:         {"ok", "handshake_refused", "handshake_failed", "connect_refused", "subscribe_refused", "error"},
		m.DiscoveryRuns:    {"ok", "unauthorized", "forbidden", "not_found", "bad_request", "rate_limited", "server_error", "malformed", "transport"},
		m.ClusterHandovers: {"rebalance", "drain", "failover", "lost"},
	} {
		for _, v := range values {
			vec.WithLabelValues(v)
		}
	}
	for _, state := range []string{"starting", "connecting", "connected", "reconnecting", "failed"} {
		m.Streams.WithLabelValues(state)
	}
	for _, kind := range []string{"fixture", "venue"} {
		m.ClusterFollowed.WithLabelValues(kind)
	}
	for _, op := range []string{"create", "update", "delete", "get"} {
		for _, outcome := range []string{"ok", "conflict", "error"} {
			m.ClusterKVOps.WithLabelValues(op, outcome)
		}
	}
}

// Discard returns Metrics that are counted but registered nowhere.
func Discard() *Metrics {
	m := build()
	m.Registry = prometheus.NewRegistry()
	return m
}

func build() *Metrics {
	const ns = "datacore"
	return &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_received_total",
			Help: "MQTT messages received, by stream kind (fixture, venue) and message kind (events, statistics, ...)."},
			[]string{"stream_kind", "kind"}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_published_total",
			Help: "Messages accepted by NATS (core) or acknowledged by JetStream."},
			[]string{"stream_kind", "kind"}),
		PublishErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "publish_errors_total",
			Help: "Publishes that failed for good."}),
		PublishRetries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "publish_retries_total",
			Help: "Publishes sent again: JetStream with the same Nats-Msg-Id after a failed or late ack, core NATS after waiting for the connection."}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "messages_dropped_total",
			Help: "Messages received but not published, by reason (publish_error, too_large, rejected, shutdown, unknown_topic)."},
			[]string{"reason"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "duplicates_suppressed_total",
			Help: "Messages not published again because the same subject and payload were seen within the dedup window."},
			[]string{"stream_kind"}),
		AccessCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "access_calls_total",
			Help: "Access API calls, by outcome (ok, unauthorized, forbidden, not_found, bad_request, rate_limited, server_error, malformed, transport, expired: a grant that expires too soon after it arrives)."},
			[]string{"outcome"}),
		Grants: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "grants_total",
			Help: "Grants (signed URLs) obtained from the access API."}),
		Rotations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rotations_total",
			Help: "Make-before-break rotations to a new connection, by result (ok, failed)."},
			[]string{"result"}),
		Reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reconnects_total",
			Help: "Connections re-established after a loss, by reason (lost: the connection dropped; expired: it dropped after its grant expired)."},
			[]string{"reason"}),
		Connects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "mqtt_connects_total",
			Help: "MQTT connection attempts, by result (ok, handshake_refused, handshake_failed, connect_refused, subscribe_refused, error)."},
			[]string{"result"}),
		Streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "streams",
			Help: "Followed fixtures and venues, by state."},
			[]string{"state"}),
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "publish_latency_seconds",
			Help:    "Time from MQTT receipt to the publish settled in NATS (accepted in core mode, acknowledged in JetStream mode).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inflight_messages",
			Help: "Messages received from MQTT and not yet settled in NATS (the buffer fill)."}),
		InflightLimit: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inflight_limit",
			Help: "The bound on inflight_messages (the configured maximum in flight); at the bound the bridge stops reading MQTT."}),
		FixturesFinished: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "fixtures_finished_total",
			Help: "Fixtures no longer followed because their status became CONFIRMED, CANCELLED, ABANDONED or POSTPONED."}),
		DecompressErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "decompress_errors_total",
			Help: "compressedData payloads that could not be inflated and were published untouched."}),
		DecompressSkipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "decompress_skipped_total",
			Help: "compressedData payloads published untouched because, inflated, they would exceed the NATS server's max payload."}),
		NATSConnected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nats_connected",
			Help: "1 while the NATS connection is up, else 0."}),
		DiscoveryRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "discovery_runs_total",
			Help: "Organization discovery polls (every organization listed), by outcome (ok, unauthorized, forbidden, not_found, bad_request, rate_limited, server_error, malformed, transport)."},
			[]string{"outcome"}),
		DiscoveredFixtures: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "discovered_fixtures",
			Help: "Fixtures that organization discovery has started following since the bridge started."}),

		ClusterMembers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "cluster_members",
			Help: "Cluster mode: live members this process sees, itself included (draining ones too)."}),
		ClusterFollowed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "cluster_followed",
			Help: "Cluster mode: IDs in the cluster's followed set, by kind (fixture, venue)."},
			[]string{"kind"}),
		ClusterLeases: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "cluster_leases_held",
			Help: "Cluster mode: leases this process holds, one per fixture or venue it owns."}),
		ClusterHandovers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cluster_handovers_total",
			Help: "Cluster mode: streams that changed owner, by reason: rebalance and drain (counted by the process letting go, once the new owner is connected), failover (counted by the process taking over from one that vanished), lost (counted by a process that stopped its streams because it could not renew its membership)."},
			[]string{"reason"}),
		ClusterFailover: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "cluster_failover_seconds",
			Help:    "Cluster mode: from a vanished owner's last lease renewal to the stream connected on the process that took it over.",
			Buckets: []float64{0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120}}),
		ClusterKVReady: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "cluster_kv_ready",
			Help: "Cluster mode: 1 while this process renews its membership in JetStream KV, else 0."}),
		ClusterKVOps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "cluster_kv_operations_total",
			Help: "Cluster mode: JetStream KV writes and reads, by operation (create, update, delete, get) and outcome (ok, conflict, error)."},
			[]string{"op", "outcome"}),
		ClusterLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "cluster_discovery_leader",
			Help: "Cluster mode: 1 while this process is the one that lists the organizations' fixtures, else 0."}),
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.Received, m.Published, m.PublishErrors, m.PublishRetries, m.Dropped, m.Duplicates,
		m.AccessCalls, m.Grants, m.Rotations, m.Reconnects, m.Connects, m.Streams, m.Latency,
		m.Inflight, m.InflightLimit, m.FixturesFinished, m.DecompressErrors, m.DecompressSkipped, m.NATSConnected,
		m.DiscoveryRuns, m.DiscoveredFixtures,
		m.ClusterMembers, m.ClusterFollowed, m.ClusterLeases, m.ClusterHandovers, m.ClusterFailover,
		m.ClusterKVReady, m.ClusterKVOps, m.ClusterLeader,
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
