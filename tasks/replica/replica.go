// Package replica is the protocol by which the registries serving one
// storage (one on a filesystem, any number on a shared backend) know each
// other and by which a gc makes them hold their writes while it sweeps,
// with pulls going on. It speaks only through a storage driver (the
// storage itself: no other service needed); every server joins it, and a
// gc (package collect) holds it.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"

	"github.com/ocireg-tool/ocireg-tool/tasks/regconfig"
)

// Replicas of one shared backend know each other through objects under
// regconfig.SharedPrefix in the backend itself (no other service needed):
//
//	replicas/<id>   each replica's Replica record, rewritten every
//	                heartbeat; a record older than replicaStale is a
//	                replica that is gone
//	gc/request      a GCRequest while a gc sweeps; rewritten every
//	                heartbeat by the gc, ignored when older than gcStale
//	gc/acks/<id>    the request id a replica holds writes for
//
// While a gc request stands, every replica holds write requests (they wait,
// they are not refused) and acknowledges once its writes in flight are
// done; the gc sweeps only when every live replica has acknowledged.
const (
	replicasDir = regconfig.SharedPrefix + "/replicas"
	gcRequest   = regconfig.SharedPrefix + "/gc/request"
	gcAcksDir   = regconfig.SharedPrefix + "/gc/acks"
)

var (
	// heartbeat is how often replicas and a gc rewrite their records.
	heartbeat = 2 * time.Second
	// replicaStale is the age after which a replica record is gone.
	replicaStale = 10 * time.Second
	// gcStale is the age after which a gc request is one of a gc that died.
	gcStale = 15 * time.Second
	// clusterPoll is how often a replica looks for a gc request.
	clusterPoll = 250 * time.Millisecond
	// maxHold bounds how long a write waits for a gc (under the server's
	// 2-minute write deadline); then it is refused with 503.
	maxHold = 90 * time.Second
)

// Replica is one registry serving a shared backend.
type Replica struct {
	ID      string    `json:"id"`
	URL     string    `json:"url"`
	Host    string    `json:"host"`
	Pid     int       `json:"pid"`
	Started time.Time `json:"started"`
	// Seen is when the record was last written (from the backend).
	Seen time.Time `json:"seen"`
	// Wake names the signal the replica's server takes to look for a gc
	// request at once (WakeSignal); empty: it only polls.
	Wake string `json:"wake,omitempty"`
}

// GCRequest is a gc asking every replica to hold writes.
type GCRequest struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	Pid     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// Ack is a replica's acknowledgement of a gc request: it holds writes and
// push probes, these digests are in use by pushes in flight and these
// uploads are open.
type Ack struct {
	Request string          `json:"request"`
	InUse   []digest.Digest `json:"in_use"`
	Uploads []string        `json:"uploads"`
}

// ID names the replica of this host listening on port in the backend.
func ID(port string) string {
	host, _ := os.Hostname()
	return host + "_" + port
}

// Member is this replica's part in the cluster: its heartbeat, and the
// gate that holds writes while a gc sweeps.
type Member struct {
	d        driver.StorageDriver
	rec      Replica
	log      *logrus.Entry
	inflight atomic.Int64

	inuse inUse

	mu      sync.Mutex
	holding string        // id of the gc request writes are held for
	resume  chan struct{} // closed when the hold ends

	stop func()        // ends run
	done chan struct{} // closed when run has returned
	wake chan struct{} // Poke: look for a gc request now
}

// Join makes the registry that serves url from the shared backend d a
// replica: it writes its record, beats until Leave and follows gc
// requests. Gate wraps the registry's handler with the write hold.
//
// A server that handles WakeSignal (calling Poke) says so with wakes: a gc
// of its host then wakes it instead of waiting for its poll.
func Join(ctx context.Context, d driver.StorageDriver, id, url string, log *logrus.Entry, wakes bool) (*Member, error) {
	host, _ := os.Hostname()
	m := &Member{d: d, log: log, wake: make(chan struct{}, 1), rec: Replica{ID: id, URL: url, Host: host, Pid: os.Getpid(), Started: time.Now().UTC()}}
	if wakes {
		m.rec.Wake = wakeName
	}
	members.Store(id, m)
	if err := m.beat(ctx); err != nil {
		return nil, fmt.Errorf("registering replica %s in the backend: %w", id, err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	// A gc that stood its request before this record was written does not
	// wait for this replica: hold before serving anything.
	if req, err := readGCRequest(ctx, d); err == nil && req != nil {
		m.hold(lctx, req)
	}
	m.stop = cancel
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		m.run(lctx)
	}()
	return m, nil
}

// Leave stops the heartbeat and removes the replica's records.
func (m *Member) Leave() {
	m.stop()
	<-m.done
	members.CompareAndDelete(m.rec.ID, m)
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	_ = m.d.Delete(dctx, path.Join(replicasDir, m.rec.ID))
	_ = m.d.Delete(dctx, path.Join(gcAcksDir, m.rec.ID))
}

// beat writes the replica's record.
func (m *Member) beat(ctx context.Context) error {
	data, err := json.Marshal(m.rec)
	if err != nil {
		return err
	}
	return m.d.PutContent(ctx, path.Join(replicasDir, m.rec.ID), data)
}

// run beats and follows gc requests until ctx ends.
func (m *Member) run(ctx context.Context) {
	tick := time.NewTicker(clusterPoll)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			m.release()
			return
		case <-tick.C:
		case <-m.wake:
		}
		if time.Since(last) >= heartbeat {
			if err := m.beat(ctx); err != nil && ctx.Err() == nil {
				m.log.Warnf("replica heartbeat: %v", err)
			}
			last = time.Now()
		}
		req, err := readGCRequest(ctx, m.d)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				m.log.Warnf("reading gc request: %v", err)
			}
		case req == nil:
			m.release()
		default:
			m.hold(ctx, req)
		}
	}
}

// readGCRequest returns the gc request standing in the backend, or nil
// when there is none (or only one of a gc that died).
func readGCRequest(ctx context.Context, d driver.StorageDriver) (*GCRequest, error) {
	fi, err := d.Stat(ctx, gcRequest)
	var nf driver.PathNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if time.Since(fi.ModTime()) > gcStale {
		return nil, nil
	}
	data, err := d.GetContent(ctx, gcRequest)
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var req GCRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, fmt.Errorf("%s: %w", gcRequest, err)
	}
	return &req, nil
}

// hold starts holding writes for req (once), waits for the writes in
// flight and acknowledges.
func (m *Member) hold(ctx context.Context, req *GCRequest) {
	m.mu.Lock()
	if m.holding == req.ID {
		m.mu.Unlock()
		return
	}
	if m.holding == "" {
		m.resume = make(chan struct{})
	}
	m.holding = req.ID
	m.mu.Unlock()
	m.log.Infof("gc %s from %s: holding writes", req.ID, req.Host)
	for m.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	ack, _ := json.Marshal(Ack{Request: req.ID, InUse: m.inuse.list(), Uploads: m.inuse.openUploads()})
	if err := m.d.PutContent(ctx, path.Join(gcAcksDir, m.rec.ID), ack); err != nil {
		m.log.Warnf("acknowledging gc %s: %v", req.ID, err)
		m.mu.Lock()
		m.holding = "" // try again at the next poll
		m.mu.Unlock()
	}
}

// release ends a hold.
func (m *Member) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.holding == "" {
		return
	}
	m.log.Infof("gc %s over: writes resume", m.holding)
	m.holding = ""
	close(m.resume)
}

// Gate holds write requests and push probes (HEAD of a blob or manifest)
// while a gc sweeps, counts those in flight and remembers the digests
// pushes in flight may still name (see inUse). Pulls are never held.
func (m *Member) Gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind, dgst := classify(r)
		if kind == kindOther {
			next.ServeHTTP(w, r)
			return
		}
		for {
			m.mu.Lock()
			held, resume := m.holding != "", m.resume
			if !held {
				m.inflight.Add(1)
			}
			m.mu.Unlock()
			if !held {
				break
			}
			select {
			case <-resume:
			case <-r.Context().Done():
				return
			case <-time.After(maxHold):
				w.Header().Set("Retry-After", "30")
				_ = errcode.ServeJSON(w, errcode.ErrorCodeUnavailable.WithDetail("garbage collection in progress"))
				return
			}
		}
		defer m.inflight.Add(-1)
		if dgst != "" {
			m.inuse.touch(dgst)
		}
		switch kind {
		case kindManifest:
			m.serveManifestPut(next, w, r)
			return
		case kindUpload:
			m.serveUpload(next, w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
