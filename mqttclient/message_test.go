package mqttclient

import "testing"

func TestNewMessage(t *testing.T) {
	acks := 0
	m := NewMessage("s/b/b1te1/1/r/e", []byte(`{}`), 1, true, func() { acks++ })
	if m.Topic != "s/b/b1te1/1/r/e" || string(m.Payload) != `{}` || m.QoS != 1 || !m.Duplicate {
		t.Fatalf("NewMessage = %+v, want the fields it was given", m)
	}
	if acks != 0 {
		t.Fatalf("acknowledged %d times before Ack, want 0", acks)
	}
	m.Ack()
	copied := m
	copied.Ack()
	if acks != 1 {
		t.Fatalf("ack called %d times after two Acks of copies, want 1", acks)
	}
	NewMessage("t", nil, 0, false, nil).Ack() // no ack func: does nothing
}
