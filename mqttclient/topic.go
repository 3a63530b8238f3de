package mqttclient

import (
	"fmt"
	"strings"
)

// maxTopicLen is the longest topic MQTT can carry (a two-byte length).
const maxTopicLen = 65535

// CheckTopic reports whether name is a topic name, which subscribing to
// receives that topic alone: not empty, at most 65535 bytes, and free of the
// wildcards '+' and '#' (a filter holding them would receive other topics
// too) and of NUL. The error wraps ErrInvalidTopic and does not quote name.
func CheckTopic(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	case len(name) > maxTopicLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidTopic, maxTopicLen)
	case strings.ContainsAny(name, "+#"):
		return fmt.Errorf("%w: holds an MQTT wildcard ('+' or '#')", ErrInvalidTopic)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("%w: holds NUL", ErrInvalidTopic)
	}
	return nil
}

// CheckQoS reports whether qos is a subscription QoS the bridge uses: 0 or 1
// (AWS IoT Core has no QoS 2). It is the one rule for a QoS: the supervisor
// and config apply it too. The error wraps ErrInvalidQoS.
func CheckQoS(qos int) error {
	if qos != 0 && qos != 1 {
		return fmt.Errorf("%w: %d: want 0 or 1", ErrInvalidQoS, qos)
	}
	return nil
}
