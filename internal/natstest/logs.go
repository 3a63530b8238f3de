package natstest

import "strings"

// CountLines counts the lines of logs that contain every one of subs, ignoring
// case. Tests use it to check how often a NATS event, such as an authorization
// violation, was logged and at which level.
func CountLines(logs string, subs ...string) int {
	n := 0
	for line := range strings.SplitSeq(strings.ToLower(logs), "\n") {
		all := line != ""
		for _, sub := range subs {
			all = all && strings.Contains(line, strings.ToLower(sub))
		}
		if all {
			n++
		}
	}
	return n
}
