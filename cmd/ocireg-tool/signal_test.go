package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

// A command whose context a signal ended exits with the shell's status for
// that signal and says so, whatever error the work stopped with.
func TestInterruptedExit(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		err  error
		code int
		want string
	}{
		{syscall.SIGINT, fmt.Errorf("copying x: %w", context.Canceled), 130, "Error: copying x: context canceled (interrupted by SIGINT)"},
		{syscall.SIGTERM, fmt.Errorf("push stopped before it finished: %w", &interrupted{sig: syscall.SIGTERM}), 143, "Error: push stopped before it finished: interrupted by SIGTERM\n"},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(&interrupted{sig: c.sig})
		var out bytes.Buffer
		app := &App{Ctx: ctx, Stdout: &out, Stderr: &out}
		if code := reportError(app, c.err); code != c.code || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.sig, code, c.code, c.want, out.String())
		}
	}
}
