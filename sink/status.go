package sink

import (
	"sync"

	"github.com/nats-io/nats.go"
)

// StatusWatcher keeps a report of a connection's state current: it calls a
// function with true while the connection is up and false otherwise, at
// start and on every change, until it is stopped.
type StatusWatcher struct {
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// WatchStatus starts a StatusWatcher on nc that calls set with the current
// state now and after every status change. set is called from one goroutine
// at a time. Stop it with Stop.
func WatchStatus(nc *nats.Conn, set func(connected bool)) *StatusWatcher {
	w := &StatusWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	// Listen before reading the status, so that no change falls between.
	ch := nc.StatusChanged()
	report := func() { set(nc.Status() == nats.CONNECTED) }
	report()
	go func() {
		defer close(w.done)
		defer nc.RemoveStatusListener(ch)
		for {
			select {
			case <-w.stop:
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				// The event only wakes the watcher: nats.go drops events
				// when the listener is behind, so the state is read anew.
				report()
			}
		}
	}()
	return w
}

// Stop stops the watcher and waits for its goroutine: set is not called
// once Stop has returned. It is safe to call more than once.
func (w *StatusWatcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}
