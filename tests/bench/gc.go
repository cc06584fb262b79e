package main

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
)

// gcStore is the garbage store gc and gcpull collect: the gc tree pushed
// (strategy latest) into our registry, half of its images deleted, a
// pristine copy of the storage kept to restore before every collection.
type gcStore struct {
	o        *ours
	pristine string
	total    int      // blobs in the pristine store
	deleted  int      // images untagged
	live     []string // images still tagged latest
}

// garbageStore builds the gc store once per bench run.
func (b *bench) garbageStore() (*gcStore, error) {
	if b.gc != nil {
		return b.gc, nil
	}
	o, err := b.newOurs("gc", map[string]string{
		"DEPLOY_DIR_IMAGES":               b.gcTree.Root,
		"CONTAINER_REGISTRY_TAG_STRATEGY": "latest",
	})
	if err != nil {
		return nil, err
	}
	if _, err := o.Start(b.ctx); err != nil {
		return nil, err
	}
	if _, err := o.Run(b.ctx, "push"); err != nil {
		return nil, err
	}
	deleted := len(b.gcTree.Names) / 2
	for _, name := range b.gcTree.Names[:deleted] {
		if _, err := o.Run(b.ctx, "delete", name+":latest"); err != nil {
			return nil, err
		}
	}
	if err := o.Stop(); err != nil {
		return nil, err
	}
	pristine := filepath.Join(b.work, "gc-pristine")
	if err := copyTree(o.DataDir(), pristine); err != nil {
		return nil, err
	}
	total, err := countBlobs(pristine)
	if err != nil {
		return nil, err
	}
	b.gc = &gcStore{o: o, pristine: pristine, total: total, deleted: deleted, live: b.gcTree.Names[deleted:]}
	if total < 1000 {
		b.notef("gc: fewer than 1,000 blobs (%d): scaled down with -gc-layers.", total)
	}
	return b.gc, nil
}

// restore stops our registry, puts a fresh copy of the garbage store in
// place and starts the registry on it (none of it timed).
func (g *gcStore) restore(ctx context.Context) error {
	if err := g.o.Stop(); err != nil {
		return err
	}
	if err := restoreTree(g.pristine, g.o.DataDir()); err != nil {
		return err
	}
	_, err := g.o.Start(ctx)
	return err
}

// restoreTree makes dst (absent, or an earlier copy) a copy of the
// storage root src, touching only what differs: what src lacks goes, what
// dst lacks or holds changed (size or modification time) is copied. Blob
// data files are hard links: distribution writes a blob once, by renaming
// its finished upload into place, and gc unlinks it, so src never changes
// through them. Everything else, which a registry may rewrite in place,
// is copied with its mode and modification time.
func restoreTree(src, dst string) error {
	// What src lacks goes.
	if _, err := os.Lstat(dst); err == nil {
		err := filepath.WalkDir(dst, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dst, p)
			if err != nil {
				return err
			}
			si, err := os.Lstat(filepath.Join(src, rel))
			if err == nil && si.Mode().Type() == de.Type() {
				return nil
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	blobs := filepath.Join(src, "docker", "registry", "v2", "blobs") + string(filepath.Separator)
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		fi, err := de.Info()
		if err != nil {
			return err
		}
		ti, terr := os.Lstat(to)
		switch {
		case de.IsDir():
			if terr == nil {
				return nil
			}
			return os.Mkdir(to, fi.Mode().Perm())
		case de.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if terr == nil {
				if got, _ := os.Readlink(to); got == target {
					return nil
				}
				os.Remove(to)
			}
			return os.Symlink(target, to)
		case !de.Type().IsRegular():
			return fmt.Errorf("%s: not a file or directory", p)
		case strings.HasPrefix(p, blobs) && de.Name() == "data":
			if terr == nil {
				return nil // the same digest, the same bytes
			}
			return os.Link(p, to)
		}
		if terr == nil && ti.Size() == fi.Size() && ti.ModTime().Equal(fi.ModTime()) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	})
}

// measureGC: `container-registry.sh gc --yes` with our registry running
// (online: it holds pushes, pulls go on) vs docker-registry's offline
// `garbage-collect`, each on a fresh copy of one store with ≥ 1,000 blobs
// of which about half are unreferenced.
func (b *bench) measureGC() error {
	g, err := b.garbageStore()
	if err != nil {
		return err
	}
	o := g.o
	d, err := b.newDocker("gc-docker")
	if err != nil {
		return err
	}
	var ours, base []time.Duration
	var oursLeft, baseLeft int
	oursRun := func() error {
		if err := g.restore(b.ctx); err != nil {
			return err
		}
		r, err := o.Run(b.ctx, "gc", "--yes")
		if err != nil {
			return err
		}
		if o.pid == 0 || !processAlive(o.pid) {
			return fmt.Errorf("the registry is not running after gc --yes (online gc stops nothing):\n%s", tail(r.Stdout+r.Stderr))
		}
		ours = append(ours, r.Elapsed)
		oursLeft, err = countBlobs(o.DataDir())
		return err
	}
	baseRun := func() error {
		if err := restoreTree(g.pristine, d.DataDir()); err != nil {
			return err
		}
		r, err := run(b.ctx, nil, b.docker, "garbage-collect", d.config)
		if err != nil {
			return err
		}
		base = append(base, r.Elapsed)
		baseLeft, err = countBlobs(d.DataDir())
		return err
	}
	for i := range b.runs {
		b.logf("gc run %d/%d", i+1, b.runs)
		if err := orderFor(i, oursRun, baseRun); err != nil {
			return err
		}
	}
	if err := o.Stop(); err != nil {
		return err
	}
	ratio := seconds(ours).median() / seconds(base).median()
	b.add(row{Name: fmt.Sprintf("gc: %d blobs, %d of %d images untagged (ours online, registry serving)", g.total, g.deleted, len(b.gcTree.Names)), Ours: seconds(ours), Base: seconds(base), BaseName: "docker-registry garbage-collect, offline", Unit: unitSeconds,
		Ratio: ratio, RatioText: "of docker-registry's time", Goal: "≤ 1.0×", Met: boolp(ratio <= 1.0)})
	b.notef("gc: ours ran online (`gc --yes` with the registry serving, which holds pushes and lets pulls go on); docker-registry's `garbage-collect` runs offline, on storage no server is using. Ours includes the write hold on the running registry, which docker-registry's offline run has no need of: by the code (tasks/replica), gc writes a request that the registry polls for every 250 ms and then polls for its acknowledgement every 250 ms, so the hold adds a fixed wait of up to about 0.5 s whatever the store's size. The store held %d blobs; %d remained after our gc, %d after docker-registry's.", g.total, oursLeft, baseLeft)
	return nil
}

func processAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// pullStats are the pulls of one phase.
type pullStats struct {
	lat    []time.Duration
	failed int
	errs   []string // the first few failures
}

func (p *pullStats) add(q pullStats) {
	p.lat = append(p.lat, q.lat...)
	p.failed += q.failed
	for _, e := range q.errs {
		if len(p.errs) < 5 {
			p.errs = append(p.errs, e)
		}
	}
}

// percentile is the q-th quantile (nearest rank) of d, in seconds.
func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	c := append([]time.Duration(nil), d...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	k := int(math.Ceil(q*float64(len(c)))) - 1
	return c[min(max(k, 0), len(c)-1)].Seconds()
}

const (
	gcPullers = 2   // pull concurrently in gcpull
	gcPulls   = 400 // pulls with and without gc, over all runs
)

// pullLoop pulls the live images of the gc store round robin with
// gcPullers goroutines until stop is closed or, with limit > 0, limit
// pulls were made: each pull resolves
// <image>:latest to the amd64 image (the index, then its manifest) and
// reads its config and every layer with go-containerregistry, which
// checks every digest. A pull that fails or reads wrong bytes counts as
// failed.
func (b *bench) pullLoop(g *gcStore, tr http.RoundTripper, stop <-chan struct{}, limit int64) pullStats {
	var mu sync.Mutex
	var made atomic.Int64
	var all pullStats
	var wg sync.WaitGroup
	for w := range gcPullers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine pullStats
			for i := w; ; i += gcPullers {
				select {
				case <-stop:
					mu.Lock()
					all.add(mine)
					mu.Unlock()
					return
				default:
				}
				if limit > 0 && made.Add(1) > limit {
					mu.Lock()
					all.add(mine)
					mu.Unlock()
					return
				}
				img := g.live[i%len(g.live)]
				start := time.Now()
				if err := pullOnce(b.ctx, tr, g.o.Addr(), img); err != nil {
					if b.ctx.Err() != nil {
						continue
					}
					mine.failed++
					if len(mine.errs) < 5 {
						mine.errs = append(mine.errs, err.Error())
					}
					continue
				}
				mine.lat = append(mine.lat, time.Since(start))
			}
		}()
	}
	wg.Wait()
	return all
}

func pullOnce(ctx context.Context, tr http.RoundTripper, addr, image string) error {
	ref, err := name.ParseReference(addr+"/yocto/"+image+":latest", name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithTransport(tr), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: machines[0].Platform}))
	if err != nil {
		return err
	}
	if err := testreg.ReadImage(img); err != nil {
		return fmt.Errorf("%s %w", image, err)
	}
	return nil
}

// measureGCPull: pull latency of the live images of the gc store with the
// registry serving, without a gc and while `gc --yes` collects the
// restored garbage store. Every run restores the store, makes its share
// of gcPulls (at least 80) without gc, then pulls for the whole of one
// `gc --yes` after another, each on the store restored again (pullers
// stopped meanwhile), until as many pulls were made during gc.
func (b *bench) measureGCPull() error {
	g, err := b.garbageStore()
	if err != nil {
		return err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * gcPullers, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var without, during pullStats
	var p99Without, p99During samples
	var gcTimes []time.Duration
	perRun := max(80, (gcPulls+b.runs-1)/b.runs)
	for i := range b.runs {
		b.logf("gcpull run %d/%d", i+1, b.runs)
		if err := g.restore(b.ctx); err != nil {
			return err
		}
		// Without gc: the same store, the same pullers.
		w := b.pullLoop(g, tr, nil, int64(perRun))
		// During gc: the pullers start, then gc --yes runs to its end;
		// again on a restored store until there were enough pulls.
		var d pullStats
		for cycle := 0; len(d.lat)+d.failed < perRun; cycle++ {
			if cycle > 0 {
				if err := g.restore(b.ctx); err != nil {
					return err
				}
			}
			stop := make(chan struct{})
			res := make(chan pullStats, 1)
			go func() { res <- b.pullLoop(g, tr, stop, 0) }()
			r, gcErr := g.o.Run(b.ctx, "gc", "--yes")
			close(stop)
			d.add(<-res)
			if gcErr != nil {
				return gcErr
			}
			if !strings.Contains(r.Stdout+r.Stderr, "Garbage collection complete") {
				return fmt.Errorf("gc --yes did not say it completed:\n%s", tail(r.Stdout+r.Stderr))
			}
			gcTimes = append(gcTimes, r.Elapsed)
		}
		if len(w.lat) == 0 || len(d.lat) == 0 {
			return fmt.Errorf("no successful pulls (without gc: %d, %d failed; during gc: %d, %d failed): %v %v", len(w.lat), w.failed, len(d.lat), d.failed, w.errs, d.errs)
		}
		without.add(w)
		during.add(d)
		p99Without = append(p99Without, percentile(w.lat, 0.99))
		p99During = append(p99During, percentile(d.lat, 0.99))
	}
	if err := g.o.Stop(); err != nil {
		return err
	}
	ratio := p99During.median() / p99Without.median()
	failed := without.failed + during.failed
	note := fmt.Sprintf("%d pulls during gc, %d without; %d failed", len(during.lat), len(without.lat), failed)
	b.add(row{Name: fmt.Sprintf("pull p99 latency during online gc (%d blobs, %d pullers)", g.total, gcPullers),
		Ours: p99During, Base: p99Without, BaseName: "the same pulls without gc", Unit: unitSeconds,
		Ratio: ratio, RatioText: "of the p99 without gc", Goal: "≤ 2.0× and 0 failed pulls", Met: boolp(ratio <= 2.0 && failed == 0), Note: note})
	b.notef("gcpull: per run, the garbage store restored and our registry started; %d goroutines pull the %d live images round robin (go-containerregistry: `latest` resolved to the amd64 image, its config and %d layers read, every digest checked), %d pulls without gc, then during one `gc --yes` after another (online: the registry serving; the store restored between them with the pullers stopped) until %d pulls were made during gc. The row is the median of the per-run p99s; all pulls together: p50 %s / p99 %s during gc, %s / %s without; %d pulls during gc and %d without, over %d collections of %s each (median). Failed pulls: %d during gc, %d without%s.",
		gcPullers, len(g.live), len(b.gcTree.Blobs)/len(b.gcTree.Images)-1, perRun, perRun,
		unitSeconds.format(percentile(during.lat, 0.5)), unitSeconds.format(percentile(during.lat, 0.99)),
		unitSeconds.format(percentile(without.lat, 0.5)), unitSeconds.format(percentile(without.lat, 0.99)),
		len(during.lat), len(without.lat), len(gcTimes), unitSeconds.format(seconds(gcTimes).median()), during.failed, without.failed, failureText(append(during.errs, without.errs...)))
	return nil
}

func failureText(errs []string) string {
	if len(errs) == 0 {
		return ""
	}
	var short []string
	for _, e := range errs {
		e, _, _ = strings.Cut(e, "\n")
		short = append(short, e)
	}
	return " (first: " + strings.Join(short, "; ") + ")"
}
