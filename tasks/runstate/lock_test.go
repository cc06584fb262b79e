package runstate

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
)

// One holder at a time: a second Lock waits, gives up after its wait
// with ErrLockBusy, and gets the lock once the first lets go.
func TestLockExclusive(t *testing.T) {
	c, err := config.FromVars(config.Vars{"CONTAINER_REGISTRY_STORAGE": t.TempDir(), "CONTAINER_REGISTRY_URL": "localhost:5999"})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(context.Background(), c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(context.Background(), c, 50*time.Millisecond); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("second lock while held: %v, want ErrLockBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, c, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock with a cancelled context: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), c, 5*time.Second)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(30 * time.Millisecond)
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if _, err := os.Stat(LockFile(c)); err != nil {
		t.Fatal(err)
	}
}
