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
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"
)

// ackWait bounds how long gc waits for the replicas to hold their writes.
var ackWait = 60 * time.Second

// HoldWrites makes every live replica of the shared backend d hold its
// writes: it stands a gc request in the backend (kept fresh while the
// caller sweeps) and waits until each replica has acknowledged it. It
// returns the ids of the replicas that hold, and the function that
// withdraws the request (writes resume).
func HoldWrites(ctx context.Context, d driver.StorageDriver) (ids []string, withdraw func() error, err error) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	req := GCRequest{ID: hex.EncodeToString(b), Host: host, Started: time.Now().UTC()}
	data, _ := json.Marshal(req)
	if err := d.PutContent(ctx, gcRequest, data); err != nil {
		return nil, nil, fmt.Errorf("asking the replicas to hold writes: %w", err)
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
	ids, err = waitAcks(ctx, d, req.ID)
	if err != nil {
		return nil, nil, errors.Join(err, withdraw())
	}
	return ids, withdraw, nil
}

// waitAcks waits until every live replica has acknowledged request id and
// returns their ids.
func waitAcks(ctx context.Context, d driver.StorageDriver, id string) ([]string, error) {
	deadline := time.Now().Add(ackWait)
	for {
		live, err := List(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("listing the replicas: %w", err)
		}
		var ids, waiting []string
		for _, r := range live {
			ids = append(ids, r.ID)
			ack, err := d.GetContent(ctx, path.Join(gcAcksDir, r.ID))
			if err != nil || string(ack) != id {
				waiting = append(waiting, r.URL+" ("+r.ID+")")
			}
		}
		if len(waiting) == 0 {
			return ids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replicas did not hold their writes within %s: %s; nothing was collected", ackWait, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(clusterPoll):
		}
	}
}
