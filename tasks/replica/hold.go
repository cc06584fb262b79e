package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
)

// ackWait bounds how long gc waits for the replicas to hold their writes.
var ackWait = 60 * time.Second

// Hold is a gc's hold of every live replica of a storage.
type Hold struct {
	// Replicas are the ids of the replicas that hold.
	Replicas []string
	// InUse are the digests pushes in flight on them may still name, and
	// Uploads the uploads those pushes have open.
	InUse   []digest.Digest
	Uploads []string
}

// ErrBusy is returned by HoldWrites while another gc holds the storage.
var ErrBusy = errors.New("another garbage collection is running")

// HoldWrites makes every live replica serving d hold its writes and push
// probes: it stands a gc request in the storage (kept fresh while the
// caller sweeps) and waits until each replica has acknowledged it. It
// returns the hold, and the function that withdraws the request (writes
// resume). A gc request of another gc that still stands is ErrBusy: one
// gc at a time.
func HoldWrites(ctx context.Context, d driver.StorageDriver) (hold *Hold, withdraw func() error, err error) {
	host, _ := os.Hostname()
	if other, err := readGCRequest(ctx, d); err != nil {
		return nil, nil, fmt.Errorf("reading the gc request: %w", err)
	} else if other != nil && !(other.Host == host && !alive(other.Pid)) {
		// A gc of this host that is gone (killed) needs no waiting for.
		return nil, nil, fmt.Errorf("%w (pid %d on %s, since %s)", ErrBusy, other.Pid, other.Host, other.Started.Format(time.RFC3339))
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	req := GCRequest{ID: hex.EncodeToString(b), Host: host, Pid: os.Getpid(), Started: time.Now().UTC()}
	data, _ := json.Marshal(req)
	if err := d.PutContent(ctx, gcRequest, data); err != nil {
		return nil, nil, fmt.Errorf("asking the replicas to hold writes: %w", err)
	}
	if live, err := List(ctx, d); err == nil {
		wakeLocal(live)
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	refreshed := make(chan struct{})
	go func() {
		defer close(refreshed)
		for {
			select {
			case <-rctx.Done():
				return
			case <-time.After(heartbeat):
				_ = d.PutContent(rctx, gcRequest, data)
			}
		}
	}()
	withdraw = func() error {
		stop()
		<-refreshed
		if err := d.Delete(context.WithoutCancel(ctx), gcRequest); err != nil {
			return fmt.Errorf("withdrawing the gc request %s: %w (replicas resume writes after %s)", gcRequest, err, gcStale)
		}
		return nil
	}
	hold, err = waitAcks(ctx, d, req.ID)
	if err != nil {
		return nil, nil, errors.Join(err, withdraw())
	}
	return hold, withdraw, nil
}

// waitAcks waits until every live replica has acknowledged request id and
// returns the hold they make.
func waitAcks(ctx context.Context, d driver.StorageDriver, id string) (*Hold, error) {
	deadline := time.Now().Add(ackWait)
	poll := 2 * time.Millisecond
	for {
		live, err := List(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("listing the replicas: %w", err)
		}
		hold := &Hold{}
		var waiting []string
		for _, r := range live {
			hold.Replicas = append(hold.Replicas, r.ID)
			data, err := d.GetContent(ctx, path.Join(gcAcksDir, r.ID))
			var ack Ack
			if err != nil || json.Unmarshal(data, &ack) != nil || ack.Request != id {
				waiting = append(waiting, r.URL+" ("+r.ID+")")
				continue
			}
			hold.InUse = append(hold.InUse, ack.InUse...)
			hold.Uploads = append(hold.Uploads, ack.Uploads...)
		}
		if len(waiting) == 0 {
			return hold, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replicas did not hold their writes within %s: %s; nothing was collected", ackWait, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
		// Woken replicas answer within milliseconds; others at their poll.
		poll = min(2*poll, clusterPoll)
	}
}

// alive reports whether process pid of this host exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lastCollected is the object whose modification time is when the last
// collection of the storage ended.
const lastCollected = regconfig.SharedPrefix + "/gc/last"

// MarkCollected notes in the storage that a collection just ended.
func MarkCollected(ctx context.Context, d driver.StorageDriver) error {
	return d.PutContent(ctx, lastCollected, []byte(time.Now().UTC().Format(time.RFC3339)))
}

// LastCollected is when the last collection of the storage ended (zero
// when none did).
func LastCollected(ctx context.Context, d driver.StorageDriver) (time.Time, error) {
	fi, err := d.Stat(ctx, lastCollected)
	var nf driver.PathNotFoundError
	if errors.As(err, &nf) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}
