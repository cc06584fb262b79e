// Package events is how a long task reports progress without printing:
// the task emits typed events (each task package declares its own event
// structs), and cmd/ renders them — plain lines, or a progress bar on a
// terminal. Results still come back as the task's return value; events are
// only what happens on the way.
package events

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
