// Package events is how a long task reports progress without printing:
// the task emits typed events (each task package declares its own event
// structs), and cmd/ renders them — plain lines, or a progress bar on a
// terminal. Results still come back as the task's return value; events are
// only what happens on the way.
package events

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Sink receives a task's events as they happen. Emit may be called from
// several goroutines at once; a Sink must be safe for that.
type Sink interface {
	Emit(e any)
}

// Func adapts a function to a Sink.
type Func func(e any)

// Emit calls f(e).
func (f Func) Emit(e any) { f(e) }

// Discard drops every event.
var Discard Sink = Func(func(any) {})

// Or returns s, or Discard when s is nil.
func Or(s Sink) Sink {
	if s == nil {
		return Discard
	}
	return s
}

// Recorder is a Sink that keeps every event, for tests and callers that
// look at events after the fact.
type Recorder struct {
	mu     sync.Mutex
	events []any
}

// Emit keeps e.
func (r *Recorder) Emit(e any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns the events kept so far, in order.
func (r *Recorder) Events() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Reset forgets the events kept so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// String lists the events, one per line, for failure messages.
func (r *Recorder) String() string {
	var b strings.Builder
	for _, e := range r.Events() {
		fmt.Fprintf(&b, "%T %+v\n", e, e)
	}
	return b.String()
}
