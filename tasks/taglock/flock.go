package taglock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// fileLock is a held flock of a lock file, and the process's turn at it.
type fileLock struct {
	f    *os.File
	turn chan struct{}
}

// turns holds one channel per lock file path: the goroutines of this
// process (a push's images in flight) take turns on it before taking
// the flock, so they wait for each other without polling.
var turns sync.Map

func turnOf(path string) chan struct{} {
	c, _ := turns.LoadOrStore(path, make(chan struct{}, 1))
	return c.(chan struct{})
}

// lockPoll is how often a push waiting for a lock tries again.
const lockPoll = 20 * time.Millisecond

// lockFile takes the lock at path, waiting for it until ctx ends.
func lockFile(ctx context.Context, path string) (*fileLock, error) {
	turn := turnOf(path)
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		<-turn
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f, turn: turn}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			<-turn
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			<-turn
			return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func (l *fileLock) unlock() {
	if l == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	<-l.turn
}
