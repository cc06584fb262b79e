package tests

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
)

// pullLoop pulls refs of e round robin with ggcr (every layer read and its
// digest checked) until stop, counting pulls and failures.
type pullLoop struct {
	pulls, failures atomic.Int64
	mu              sync.Mutex
	errs            []string
	stop            chan struct{}
	done            sync.WaitGroup
}

func startPulls(t *testing.T, e *Env, refs []string, workers int) *pullLoop {
	t.Helper()
	p := &pullLoop{stop: make(chan struct{})}
	for w := range workers {
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			for i := w; ; i++ {
				select {
				case <-p.stop:
					return
				default:
				}
				ref := refs[i%len(refs)]
				if err := pullOnce(e, ref); err != nil {
					p.failures.Add(1)
					p.mu.Lock()
					if len(p.errs) < 10 {
						p.errs = append(p.errs, ref+": "+err.Error())
					}
					p.mu.Unlock()
				}
				p.pulls.Add(1)
			}
		}()
	}
	return p
}

// end stops the loop and fails the test on any failed pull.
func (p *pullLoop) end(t *testing.T, what string) {
	t.Helper()
	close(p.stop)
	p.done.Wait()
	if n := p.failures.Load(); n > 0 {
		t.Errorf("%s: %d of %d pulls failed: %s", what, n, p.pulls.Load(), strings.Join(p.errs, "; "))
	}
	t.Logf("%s: %d pulls, %d failed", what, p.pulls.Load(), p.failures.Load())
}

// pullOnce pulls ref: the manifest, the config and every layer, each
// checked against its digest.
func pullOnce(e *Env, ref string) error {
	r, err := name.ParseReference(e.URL+"/"+ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(r)
	if err != nil {
		return err
	}
	return testreg.ReadImage(img)
}

// TestOnlineGC: gc --yes on a store of a few thousand blobs never stops
// the registry. A loop of pulls of live images runs throughout and records
// no failure; a push that starts while gc holds writes waits, then
// completes and pulls; garbage goes; verify is clean. Then gc is SIGKILLed
// at its pause points (writes held, mid-sweep): pulls go on, the push
// waiting on the dead gc completes once its hold lapses, the rerun
// collects at once, nothing live is lost.
func TestOnlineGC(t *testing.T) {
	base := deployTree(t)
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": base})
	e.mustRun(t, 0, "start")
	e.mustRun(t, 0, "push", "--strategy", "latest")

	// A few thousand blobs: live images and garbage (pushed, then deleted).
	const images, layers = 24, 40
	var live []string
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	var pushErr atomic.Value
	for i := range images {
		for _, kind := range []string{"live", "junk"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				ref := fmt.Sprintf("yocto/%s%d:v1", kind, i)
				r, _ := name.ParseReference(e.URL+"/"+ref, name.Insecure)
				if err := remote.Write(r, srvRandomImage(t, 256, layers)); err != nil {
					pushErr.Store(err)
				}
			}()
		}
		live = append(live, fmt.Sprintf("yocto/live%d:v1", i))
	}
	wg.Wait()
	if err, _ := pushErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	for i := range images {
		e.mustRun(t, 0, "delete", fmt.Sprintf("junk%d:v1", i))
	}
	keep := e.snapshot(t)
	pid := e.pidOf(t)

	// Round 1: gc paused mid-sweep; pulls go on, a push waits.
	pulls := startPulls(t, e, live, 2)
	env, marker := pauseAt(t, "gc-delete#200")
	gc := e.Start(t, env, "gc", "--yes")
	poll(t, "gc to sweep", 120*time.Second, gc, func() bool { return exists(marker) })
	before := pulls.pulls.Load()
	pushed := make(chan error, 1)
	extra := srvRandomImage(t, 4096, 3)
	go func() {
		r, _ := name.ParseReference(e.URL+"/yocto/during:v1", name.Insecure)
		pushed <- remote.Write(r, extra)
	}()
	select {
	case err := <-pushed:
		t.Fatalf("a push completed while gc held writes (err %v)", err)
	case <-time.After(time.Second):
	}
	if pulls.pulls.Load() == before {
		t.Errorf("no pull completed while gc swept")
	}
	unpause(t, marker)
	code, out := gc.Wait(t)
	if code != 0 {
		t.Fatalf("gc --yes: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "Pushes wait while the collection sweeps (pulls go on)") || !strings.Contains(out, "Garbage collection complete") {
		t.Errorf("gc output:\n%s", out)
	}
	if err := <-pushed; err != nil {
		t.Fatalf("the push that waited for gc: %v", err)
	}
	pulls.end(t, "round 1 (gc paused mid-sweep)")
	if err := pullOnce(e, "yocto/during:v1"); err != nil {
		t.Errorf("the push that waited for gc does not pull: %v", err)
	}
	keep["yocto/during:v1"] = imageDigest(t, extra)
	if e.pidOf(t) != pid {
		t.Errorf("the registry was restarted (pid %d, was %d)", e.pidOf(t), pid)
	}
	r := e.mustRun(t, 0, "verify")
	wantOut(t, r, "verify after the online gc", "no unreferenced blobs")
	sameTags(t, "after round 1", keep, e.snapshot(t))

	// Rounds 2 and 3: gc killed while it holds writes, and mid-sweep.
	for i, point := range []string{"gc-held", "gc-delete#3"} {
		for j := range 4 {
			srvPush(t, e, fmt.Sprintf("yocto/junk%d:v2", j), srvRandomImage(t, 256, 10))
			e.mustRun(t, 0, "delete", fmt.Sprintf("junk%d:v2", j))
		}
		pulls := startPulls(t, e, live, 2)
		env, marker := pauseAt(t, point)
		gc := e.Start(t, env, "gc", "--yes")
		poll(t, "gc to reach "+point, 120*time.Second, gc, func() bool { return exists(marker) })
		ref := fmt.Sprintf("yocto/afterkill%d:v1", i)
		img := srvRandomImage(t, 4096, 2)
		go func() {
			r, _ := name.ParseReference(e.URL+"/"+ref, name.Insecure)
			pushed <- remote.Write(r, img)
		}()
		time.Sleep(200 * time.Millisecond)
		if err := syscall.Kill(markerPid(t, marker), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, out := gc.Wait(t); code == 0 {
			t.Fatalf("%s: killed gc exited 0:\n%s", point, out)
		}
		// The push waiting on the dead gc completes once its hold lapses.
		select {
		case err := <-pushed:
			if err != nil {
				t.Fatalf("%s: the push waiting on the killed gc: %v", point, err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: the push waiting on the killed gc never completed", point)
		}
		keep[ref] = imageDigest(t, img)
		r := e.mustRun(t, 0, "gc", "--yes")
		wantOut(t, r, point+": gc rerun", "Garbage collection complete")
		pulls.end(t, point+": gc killed and rerun")
		sameTags(t, point, keep, e.snapshot(t))
		r = e.mustRun(t, 0, "verify")
		wantOut(t, r, point+": verify", "no unreferenced blobs")
	}
	// An independent client pulls every image kept.
	for _, ref := range []string{live[0], "yocto/during:v1", "yocto/afterkill1:v1"} {
		if err := skopeoPull(t, e, ref); err != nil {
			t.Errorf("skopeo: %s: %v", ref, err)
		}
	}
}

// unpause releases a tool paused at its test hook.
func unpause(t *testing.T, marker string) {
	t.Helper()
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
}

func imageDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
