package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// snapshot is one gather of a registry: every value read from it is of the
// same instant, so that counters that move together can be compared.
type snapshot map[string]*dto.MetricFamily

// gather takes a snapshot of g.
func gather(t *testing.T, g prometheus.Gatherer) snapshot {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	s := snapshot{}
	for _, f := range families {
		s[f.GetName()] = f
	}
	return s
}

// sum adds up every series of a counter or gauge family, leaving out the
// series with a label of value skip (none when skip is empty).
func (s snapshot) sum(name, skip string) float64 {
	var sum float64
series:
	for _, m := range s[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if skip != "" && l.GetValue() == skip {
				continue series
			}
		}
		sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return sum
}

// value is the value of the counter or gauge series of name whose labels
// have the given values (in the family's label order).
func (s snapshot) value(name string, labelValues ...string) float64 {
series:
	for _, m := range s[name].GetMetric() {
		if len(m.GetLabel()) != len(labelValues) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetValue() != labelValues[i] {
				continue series
			}
		}
		return m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return 0
}

// count is the number of observations of a histogram without labels.
func (s snapshot) count(name string) uint64 {
	var n uint64
	for _, m := range s[name].GetMetric() {
		n += m.GetHistogram().GetSampleCount()
	}
	return n
}

// sumMetric is one family's sum (see snapshot.sum) in a gather of its own:
// for a single value; compare values of one snapshot instead.
func sumMetric(t *testing.T, e *env, name, skip string) float64 {
	t.Helper()
	return gather(t, e.m.Registry).sum(name, skip)
}
