package server

import (
	"time"

	"github.com/ocireg-tool/ocireg-tool/tasks/gc"
)

// The events Start, Stop, Restart and GC emit through Options.Events while
// they work, in the order they happen. cmd/ renders them as they come;
// everything else comes back in the result structs.

// Launching is emitted when the registry's files are ready and the server
// is about to be launched; Start then waits until /v2/ answers. Start is
// the result so far: what was prepared and what is launched.
type Launching struct{ Start *StartResult }

// Stopping is emitted when SIGTERM has been sent to the registry; Stop
// waits for it to exit.
type Stopping struct{ Pid int }

// Killing is emitted when the registry is still running After the SIGTERM
// and gets SIGKILL.
type Killing struct {
	Pid   int
	After time.Duration
}

// Stopped is a stop done by Restart or GC on the way (Stop itself returns
// its result instead).
type Stopped struct{ Stop *StopResult }

// Started is GC's start of the registry after the sweep, also when it
// failed part-way (then Start says what was done before the failure).
type Started struct{ Start *StartResult }

// DryRun is what GC's dry run found, emitted before GC asks or removes.
type DryRun struct {
	// Where is the storage collected: a directory, or "<type> storage".
	Where  string
	Report *gc.Report
	// UntaggedKept counts the manifests no tag references that this
	// collection keeps, and UntaggedBytes is what --delete-untagged would
	// free on top (both 0 unless the dry run is all that may happen).
	UntaggedKept  int
	UntaggedBytes int64
}

// Collected is emitted when GC has removed what Removed lists.
type Collected struct{ Removed *gc.Report }

// SweepStopping is emitted when GC stops the running registry for the
// sweep instead of holding its writes, and why.
type SweepStopping struct{ Why string }

// Restarting is emitted when GC starts the registry again after the sweep.
type Restarting struct{}
