package replica

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	"github.com/sirupsen/logrus"
)

// fast shortens the protocol's periods for one test. Every wait below is
// for a condition, bounded by a deadline far beyond the periods: the
// tests do not depend on how fast the machine is.
func fast(t *testing.T) {
	t.Helper()
	old := []time.Duration{heartbeat, replicaStale, gcStale, clusterPoll, maxHold, ackWait, inUseWindow}
	oldMax := maxInUse
	heartbeat, replicaStale, gcStale, clusterPoll, maxHold, ackWait = 20*time.Millisecond, 2*time.Second, 2*time.Second, 5*time.Millisecond, 30*time.Second, 30*time.Second
	t.Cleanup(func() {
		heartbeat, replicaStale, gcStale, clusterPoll, maxHold, ackWait, inUseWindow = old[0], old[1], old[2], old[3], old[4], old[5], old[6]
		maxInUse = oldMax
	})
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// eventually waits for cond, failing after 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func join(t *testing.T, d driver.StorageDriver, id string) *Member {
	t.Helper()
	m, err := Join(context.Background(), d, id, id+":5000", quietLog(), false)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Heartbeat: a joined replica is listed at once, its record is rewritten,
// and Leave removes it.
func TestHeartbeat(t *testing.T) {
	fast(t)
	ctx := context.Background()
	d := inmemory.New()
	if l, err := List(ctx, d); err != nil || len(l) != 0 {
		t.Fatalf("empty backend: %v, %v", l, err)
	}
	a, b := join(t, d, "host-a_5000"), join(t, d, "host-b_5001")
	l, err := List(ctx, d)
	if err != nil || len(l) != 2 || l[0].ID != "host-a_5000" || l[1].ID != "host-b_5001" || l[0].URL != "host-a_5000:5000" || l[0].Pid == 0 {
		t.Fatalf("two replicas: %+v, %v", l, err)
	}
	first := l[0].Seen
	eventually(t, "a second heartbeat", func() bool {
		fi, err := d.Stat(ctx, path.Join(replicasDir, "host-a_5000"))
		return err == nil && fi.ModTime().After(first)
	})
	a.Leave()
	if l, _ := List(ctx, d); len(l) != 1 || l[0].ID != "host-b_5001" {
		t.Fatalf("after a left: %+v", l)
	}
	b.Leave()
}

// A replica record older than replicaStale is a replica that is gone.
func TestStaleReplica(t *testing.T) {
	fast(t)
	replicaStale = 50 * time.Millisecond
	ctx := context.Background()
	d := inmemory.New()
	if err := d.PutContent(ctx, path.Join(replicasDir, "gone_5000"), []byte(`{"id":"gone_5000"}`)); err != nil {
		t.Fatal(err)
	}
	if l, _ := List(ctx, d); len(l) != 1 {
		t.Fatalf("fresh record not listed: %+v", l)
	}
	time.Sleep(100 * time.Millisecond) // older than replicaStale, however slow the machine
	if l, _ := List(ctx, d); len(l) != 0 {
		t.Fatalf("stale record listed: %+v", l)
	}
}

// A gc request makes every replica hold writes: writes wait (not
// refused) until the request is withdrawn, reads go on, and HoldWrites
// returns only once every live replica acknowledged.
func TestHoldAndAcknowledge(t *testing.T) {
	fast(t)
	ctx := context.Background()
	d := inmemory.New()
	var writes atomic.Int64
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writes.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	})
	a, b := join(t, d, "a_5000"), join(t, d, "b_5000")
	defer a.Leave()
	defer b.Leave()
	srvA, srvB := httptest.NewServer(a.Gate(backend)), httptest.NewServer(b.Gate(backend))
	defer srvA.Close()
	defer srvB.Close()

	hold, withdraw, err := HoldWrites(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	ids := hold.Replicas
	if len(ids) != 2 || ids[0] != "a_5000" || ids[1] != "b_5000" {
		t.Fatalf("held by %v", ids)
	}
	for _, id := range ids {
		if ack, err := d.GetContent(ctx, path.Join(gcAcksDir, id)); err != nil || len(ack) == 0 {
			t.Fatalf("no acknowledgement of %s: %v", id, err)
		}
	}
	// A read passes while writes are held.
	resp, err := http.Get(srvA.URL + "/v2/x/manifests/latest")
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("read during hold: %v %v", resp, err)
	}
	resp.Body.Close()
	// A write waits.
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPut, srvB.URL+"/v2/x/manifests/latest", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case code := <-done:
		t.Fatalf("write went through during the hold: %d", code)
	case <-time.After(100 * time.Millisecond):
	}
	if writes.Load() != 0 {
		t.Fatal("a write reached the registry during the hold")
	}
	if err := withdraw(); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != http.StatusAccepted || writes.Load() != 1 {
			t.Fatalf("held write after withdraw: %d, %d writes", code, writes.Load())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("held write never resumed")
	}
}

// Writes in flight when the request arrives finish before the replica
// acknowledges: the gc never sweeps under a write.
func TestAcknowledgeAfterInflight(t *testing.T) {
	fast(t)
	ctx := context.Background()
	d := inmemory.New()
	release := make(chan struct{})
	entered := make(chan struct{})
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.WriteHeader(http.StatusCreated)
	})
	m := join(t, d, "a_5000")
	defer m.Leave()
	srv := httptest.NewServer(m.Gate(backend))
	defer srv.Close()
	go func() {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/x/blobs/uploads/1", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	held := make(chan error, 1)
	var withdraw func() error
	go func() {
		var err error
		_, withdraw, err = HoldWrites(ctx, d)
		held <- err
	}()
	select {
	case err := <-held:
		t.Fatalf("hold acknowledged with a write in flight (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if err := withdraw(); err != nil {
		t.Fatal(err)
	}
}

// A gc request older than gcStale is one of a gc that died: replicas
// ignore it and writes resume.
func TestStaleRequest(t *testing.T) {
	fast(t)
	gcStale = 100 * time.Millisecond
	ctx := context.Background()
	d := inmemory.New()
	if err := d.PutContent(ctx, gcRequest, []byte(`{"id":"dead","host":"h"}`)); err != nil {
		t.Fatal(err)
	}
	req, err := readGCRequest(ctx, d)
	if err != nil || req == nil || req.ID != "dead" {
		t.Fatalf("fresh request: %+v, %v", req, err)
	}
	time.Sleep(200 * time.Millisecond) // older than gcStale, however slow the machine
	if req, err := readGCRequest(ctx, d); err != nil || req != nil {
		t.Fatalf("stale request still stands: %+v, %v", req, err)
	}
	// A replica joining now takes writes.
	m := join(t, d, "a_5000")
	defer m.Leave()
	srv := httptest.NewServer(m.Gate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })))
	defer srv.Close()
	r, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/x/manifests/t", nil)
	resp, err := http.DefaultClient.Do(r)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("write under a stale request: %v %v", resp, err)
	}
	resp.Body.Close()
}

// A gc whose replicas never acknowledge gives up after ackWait, withdraws
// its request and names the replica.
func TestHoldTimesOut(t *testing.T) {
	fast(t)
	ackWait = 100 * time.Millisecond
	ctx := context.Background()
	d := inmemory.New()
	// A live record of a replica that does not follow the protocol.
	if err := d.PutContent(ctx, path.Join(replicasDir, "mute_5000"), []byte(`{"id":"mute_5000","url":"mute:5000"}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err := HoldWrites(ctx, d)
	if err == nil || !strings.Contains(err.Error(), "mute:5000 (mute_5000)") || !strings.Contains(err.Error(), "nothing was collected") {
		t.Fatalf("err = %v", err)
	}
	if _, err := d.Stat(ctx, gcRequest); err == nil {
		t.Fatal("gc request left standing")
	}
}

// What a push in flight names before a gc (a probed or uploaded blob, a
// platform manifest put by digest) reaches the gc through the
// acknowledgement; a manifest put that names it ends that; a referrer is
// never in use; probes wait during the hold, pulls do not.
func TestInUseAndProbes(t *testing.T) {
	fast(t)
	ctx := context.Background()
	d := inmemory.New()
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	m := join(t, d, "a_5000")
	defer m.Leave()
	srv := httptest.NewServer(m.Gate(backend))
	defer srv.Close()
	dg := func(s string) digest.Digest { return digest.FromString(s) }
	do := func(method, p, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+p, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	do(http.MethodHead, "/v2/x/blobs/"+dg("probed").String(), "")
	do(http.MethodPut, "/v2/x/blobs/uploads/u1?digest="+dg("uploaded").String(), "")
	do(http.MethodPost, "/v2/x/blobs/uploads/?mount="+dg("mounted").String()+"&from=y", "")
	do(http.MethodGet, "/v2/x/blobs/"+dg("pulled").String(), "")
	do(http.MethodHead, "/v2/x/blobs/not-a-digest", "")
	// A platform manifest by digest, naming the uploaded blob: the blob is
	// no longer in use, the manifest is.
	child := dg("child")
	do(http.MethodPut, "/v2/x/manifests/"+child.String(), `{"config":{"digest":"`+dg("uploaded").String()+`"},"layers":[]}`)
	// A referrer by digest is not in use.
	do(http.MethodPut, "/v2/x/manifests/"+dg("referrer").String(), `{"layers":[],"subject":{"digest":"`+child.String()+`"}}`)
	want := []digest.Digest{child, dg("mounted"), dg("probed")}
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	hold, withdraw, err := HoldWrites(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(hold.InUse, want) {
		t.Fatalf("in use %v, want %v", hold.InUse, want)
	}
	// A second gc is refused while this one holds.
	if _, _, err := HoldWrites(ctx, d); !errors.Is(err, ErrBusy) {
		t.Fatalf("second gc: %v", err)
	}
	// A probe waits; a pull does not.
	probed := make(chan int, 1)
	go func() { probed <- do(http.MethodHead, "/v2/x/manifests/latest", "") }()
	if code := do(http.MethodGet, "/v2/x/manifests/latest", ""); code != http.StatusOK {
		t.Fatalf("pull during the hold: %d", code)
	}
	select {
	case code := <-probed:
		t.Fatalf("probe answered during the hold: %d", code)
	case <-time.After(100 * time.Millisecond):
	}
	if err := withdraw(); err != nil {
		t.Fatal(err)
	}
	if code := <-probed; code != http.StatusOK {
		t.Fatalf("probe after the hold: %d", code)
	}
	// An index naming the child ends its use.
	do(http.MethodPut, "/v2/x/manifests/latest", `{"manifests":[{"digest":"`+child.String()+`"}]}`)
	if got := m.inuse.list(); slices.Contains(got, child) {
		t.Fatalf("child still in use after its index: %v", got)
	}
}

// The set is bounded: past maxInUse the oldest go first; past
// inUseWindow a digest is no longer in use.
func TestInUseBounds(t *testing.T) {
	fast(t)
	maxInUse = 3
	var u inUse
	for _, s := range []string{"a", "b", "c", "d"} {
		u.touch(digest.FromString(s))
		time.Sleep(time.Millisecond)
	}
	got := u.list()
	if len(got) != 3 || slices.Contains(got, digest.FromString("a")) {
		t.Fatalf("bounded set %v", got)
	}
	inUseWindow = 0
	time.Sleep(time.Millisecond)
	if got := u.list(); len(got) != 0 {
		t.Fatalf("expired set %v", got)
	}
}

// An upload is open from its start (the id in Location) until its blob is
// stored, it is cancelled or a request of it fails; the gc gets the open
// ones with the acknowledgement.
func TestOpenUploads(t *testing.T) {
	fast(t)
	d := inmemory.New()
	n := 0
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			n++
			w.Header().Set("Location", fmt.Sprintf("/v2/x/blobs/uploads/u%d?_state=abc", n))
			w.WriteHeader(http.StatusAccepted)
		case strings.HasSuffix(r.URL.Path, "/fails"):
			w.WriteHeader(http.StatusInternalServerError)
		case r.Method == http.MethodPut:
			w.WriteHeader(http.StatusCreated)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	m := join(t, d, "a_5000")
	defer m.Leave()
	srv := httptest.NewServer(m.Gate(backend))
	defer srv.Close()
	do := func(method, p string) {
		req, _ := http.NewRequest(method, srv.URL+p, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	do(http.MethodPost, "/v2/x/blobs/uploads/") // u1: chunks go on
	do(http.MethodPatch, "/v2/x/blobs/uploads/u1")
	do(http.MethodPost, "/v2/x/blobs/uploads/") // u2: done
	do(http.MethodPut, "/v2/x/blobs/uploads/u2?digest="+digest.FromString("b").String())
	do(http.MethodPost, "/v2/x/blobs/uploads/") // u3: cancelled
	do(http.MethodDelete, "/v2/x/blobs/uploads/u3")
	do(http.MethodPatch, "/v2/x/blobs/uploads/fails")
	hold, withdraw, err := HoldWrites(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer withdraw()
	if !slices.Equal(hold.Uploads, []string{"u1"}) {
		t.Fatalf("open uploads %v, want [u1]", hold.Uploads)
	}
	if !slices.Contains(hold.InUse, digest.FromString("b")) {
		t.Fatalf("the uploaded blob is not in use: %v", hold.InUse)
	}
}

// A gc wakes the replicas of its host instead of waiting for their poll:
// with a poll of ten minutes, the hold still stands at once.
func TestWakeLocal(t *testing.T) {
	fast(t)
	clusterPoll = 10 * time.Minute
	d := inmemory.New()
	m := join(t, d, "a_5000")
	defer m.Leave()
	held := make(chan error, 1)
	go func() {
		_, withdraw, err := HoldWrites(context.Background(), d)
		if err == nil {
			err = withdraw()
		}
		held <- err
	}()
	select {
	case err := <-held:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the replica of this host was not woken")
	}
	// Only a server of this tool gets the signal: not this test.
	if isServer(os.Getpid()) {
		t.Error("the test binary passes for a server")
	}
}
