package mqttclient

import (
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Message is one PUBLISH received from the broker.
type Message struct {
	// Topic is the topic the message was published on.
	Topic string
	// Payload is the message body as decoded by the MQTT client: a slice
	// allocated for this message alone and never reused, so the receiver may
	// keep it (and pass it on without copying) for as long as it likes, as
	// long as nobody modifies it.
	Payload []byte
	// QoS is the QoS the message was delivered with (0 or 1).
	QoS byte
	// Duplicate is the DUP flag: the broker may have sent it before.
	Duplicate bool

	ack   mqtt.Message // set only with Options.ManualAck
	track *ackTracker  // set with ManualAck for QoS 1: counts the message as unacknowledged
	onAck func()       // set by NewMessage
}

// NewMessage returns a Message whose Ack calls ack, once however often Ack
// is called (nil: Ack does nothing). It is for stand-ins of a Conn, such as
// the fake brokers of other packages' tests, that hand messages to a Handler
// and need to see them acknowledged; a Conn makes its messages itself.
func NewMessage(topic string, payload []byte, qos byte, duplicate bool, ack func()) Message {
	m := Message{Topic: topic, Payload: payload, QoS: qos, Duplicate: duplicate}
	if ack != nil {
		m.onAck = sync.OnceFunc(ack)
	}
	return m
}

// ackTracker takes a message off its connection's unacknowledged count once.
type ackTracker struct {
	c    *Conn
	once sync.Once
}

// Ack acknowledges a QoS 1 message to the broker (PUBACK) when the
// connection was dialled with Options.ManualAck; otherwise, and for QoS 0,
// it does nothing. Only the first call sends anything. It may be called from
// any goroutine, during or after the Handler, and may block briefly while the
// connection's writer is busy. Once the connection has ended the
// acknowledgement is dropped: with a clean session the message is gone; with
// Options.Persistent the broker redelivers it when the session is resumed.
func (m Message) Ack() {
	if m.ack != nil {
		m.ack.Ack()
	}
	if m.track != nil {
		m.track.once.Do(m.track.c.acked)
	}
	if m.onAck != nil {
		m.onAck()
	}
}
