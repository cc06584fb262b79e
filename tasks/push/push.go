// Package push uploads the OCI images of Yocto deploy directories to a
// registry: it picks the images (deploy.Discover), computes their tags
// (strategies or explicit), uploads only the blobs the registry lacks, in
// parallel, puts every platform manifest by digest, attaches the build's
// SPDX documents and package list to each as OCI referrers (attach.go),
// and finally writes one OCI image index per tag, merged with the
// platforms already there.
package push

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/deploy"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/sign"
	"github.com/ocireg-tool/ocireg-tool/tasks/taglock"
)

// Usage is the push command's usage, shown with usage errors.
const Usage = `Usage: container-registry.sh push [image|path] [options]

  push                                   every image of every machine
  push container-base                    one image, all machines
  push tmp/deploy/images/m/x-oci         one OCI layout directory
  push container-base --tag v1.0.0 --tag latest
  push --strategy "sha branch latest"
  push --strategy semver --version 1.2.3`

// Options says what to push and how.
type Options struct {
	// Target is an image name, a path to an OCI layout, or "" for all.
	Target string
	// Images restricts an all-images push to these names (populate's
	// CONTAINER_REGISTRY_IMAGES); names not found are an error.
	Images []string
	// Tags are explicit tags; they need a Target.
	Tags []string
	// Strategy overrides Config.TagStrategy when not empty.
	Strategy string
	// Version overrides IMAGE_VERSION and PV for semver/version.
	Version string
	// Events receives progress (nil: discarded).
	Events events.Sink
	// Progress asks for Progress events while blobs upload (for a bar on
	// a terminal).
	Progress bool
	// Now is the run's timestamp (zero: time.Now()).
	Now time.Time
	// Jobs bounds parallel blob uploads (default 4).
	Jobs int
	// Attach overrides CONTAINER_REGISTRY_ATTACH: false attaches nothing
	// (--no-attach), true the configured kinds or, when the setting says
	// none, the default ones (--attach); nil follows the setting.
	Attach *bool
	// Signer, when set, signs every platform manifest and every tag's
	// index the push writes (CONTAINER_REGISTRY_SIGN); a manifest already
	// signed by its key is left as it is.
	Signer *sign.Signer

	// settle waits before a run checks its tags once more (nil: a timer,
	// settleWait). Tests replace it to see whether and how long a run
	// waits, whatever the machine's speed, and to skip the wait.
	settle func(ctx context.Context, d time.Duration) bool
}

// Summary is what a push did.
type Summary struct {
	Images    int // image names pushed
	Manifests int
	Tags      int
	Uploaded  int64 // bytes sent in blob uploads
	Skipped   int64 // bytes of blobs the registry already had
	Failed    []string
	Elapsed   time.Duration
	// Nothing is true when there was nothing to push; Roots are the
	// directories searched ("" none configured).
	Nothing bool
	Roots   []string
	// Pushed is true when the push ran (there were images); then
	// OlderBuilds, Catalog and the counts above describe it.
	Pushed      bool
	OlderBuilds []deploy.Skipped // found but not the newest build
	// Attached are the build documents attached to the pushed images (or
	// found already attached).
	Attached []Attached
	Catalog  []string // the registry's repositories after the push
	// Repos are the repositories this push wrote tags to, in order.
	Repos []string
	// Signed and SignedAlready count the manifests this push signed and
	// those it found signed by the key (Options.Signer), Attested and
	// AttestedAlready the SPDX documents attested; SigningKey is the key's
	// fingerprint ("" when the push does not sign).
	Signed, SignedAlready     int
	Attested, AttestedAlready int
	SigningKey                string
}

// FailedError says which images failed; each failure was reported as
// an ImageFailed or AttachFailed event.
type FailedError struct{ Names []string }

func (e *FailedError) Error() string {
	return fmt.Sprintf("push failed for: %s", strings.Join(e.Names, ", "))
}

// group is every source of one image name.
type group struct {
	name    string
	sources []*deploy.Source
}

// Push pushes what o selects to t and reports progress as events (see
// events.go). It returns a *tasks.UsageError for misuse, the Target's typed
// errors when the registry is down or refuses the credentials, and a
// *FailedError (with the Summary) when some images failed.
func Push(ctx context.Context, t *registry.Target, o Options) (*Summary, error) {
	start := time.Now()
	o.defaults()
	tagSet, err := resolveTags(t.Config, o)
	if err != nil {
		return nil, err
	}
	// The registry first: with it down, nothing else matters (the
	// original's contract), not even an empty deploy tree.
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	groups, res, err := selectSources(ctx, t.Config, o)
	if err != nil && ctx.Err() != nil {
		return nil, stopped(ctx)
	}
	if err != nil {
		return nil, err
	}
	sum := &Summary{Roots: res.Roots}
	for _, b := range res.Broken {
		o.Events.Emit(BrokenBuild{Name: b.Name, Machine: b.Machine, Reason: b.Reason})
		sum.Failed = append(sum.Failed, b.Name+" ("+b.Machine+")")
	}
	if len(groups) == 0 {
		if len(sum.Failed) > 0 {
			return sum, &FailedError{Names: sum.Failed}
		}
		sum.Nothing = true
		return sum, nil
	}
	p, err := newPushRun(ctx, t, o, tagSet, sum)
	if err != nil {
		return nil, err
	}
	defer p.lock.Close()
	o.Events.Emit(Started{URL: t.Config.URL, Namespace: t.Config.Namespace, Tags: tagSet.Tags, Arch: tagSet.Arch, AuthSource: t.AuthSource})
	p.pushAll(ctx, groups)
	p.waitSigning()
	if ctx.Err() != nil {
		// Stopped (a signal): every tag written so far references content
		// already in the registry; no further tag is written.
		sum.Pushed, sum.OlderBuilds, sum.Elapsed = true, res.Skipped, time.Since(start)
		return sum, stopped(ctx)
	}
	p.verifyTags(ctx)
	sum.Pushed, sum.OlderBuilds, sum.Elapsed = true, res.Skipped, time.Since(start)
	if repos, err := p.puller.Catalog(ctx, t.Registry); err == nil {
		sum.Catalog = repos
	}
	if len(sum.Failed) > 0 {
		return sum, &FailedError{Names: sum.Failed}
	}
	return sum, nil
}

// stopped is the error of a push whose context ended (a signal).
func stopped(ctx context.Context) error {
	return fmt.Errorf("push stopped before it finished: %w", context.Cause(ctx))
}

func (o *Options) defaults() {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.settle == nil {
		o.settle = settleWait
	}
	o.Events = events.Or(o.Events)
}

// resolveTags checks the explicit tags or computes the strategy's: every
// input error surfaces before the first byte goes out.
func resolveTags(c *config.Config, o Options) (*TagSet, error) {
	if len(o.Tags) > 0 && o.Target == "" {
		return nil, &tasks.UsageError{Msg: "--tag requires an image name", Usage: Usage}
	}
	if len(o.Tags) > 0 {
		tagSet := &TagSet{}
		for _, t := range o.Tags {
			if err := imageref.ValidateTag(t); err != nil {
				return nil, &tasks.UsageError{Msg: "--tag: " + err.Error(), Usage: Usage}
			}
			if !slices.Contains(tagSet.Tags, t) {
				tagSet.Tags = append(tagSet.Tags, t)
			}
		}
		return tagSet, nil
	}
	strategies := c.TagStrategy
	if o.Strategy != "" {
		s, err := config.ParseStrategy(o.Strategy)
		if err != nil {
			return nil, &tasks.UsageError{Msg: "--strategy: " + err.Error(), Usage: Usage}
		}
		strategies = s
	}
	gitDir := c.TopDir
	if gitDir == "" {
		gitDir, _ = os.Getwd()
	}
	tagSet, err := ComputeTags(TagInput{Strategies: strategies, Version: firstNonEmpty(o.Version, c.ImageVersion, c.PV), Now: o.Now, GitDir: gitDir})
	if err != nil {
		return nil, &tasks.UsageError{Msg: err.Error(), Usage: Usage}
	}
	for _, n := range tagSet.Notes {
		o.Events.Emit(Note{Text: n})
	}
	if len(tagSet.Tags) == 0 {
		return nil, fmt.Errorf("tag strategy %q gives no tags here; add a strategy such as latest or timestamp", strings.Join(strategies, " "))
	}
	return tagSet, nil
}

// newPushRun sets up the clients of one push: one authenticated
// transport for every request (the Target's, set up by its Ping: no
// further ping) and a pusher and a puller over it, the run's budget of
// blob requests and the registry's tag lock (taglock). A registry handing
// out bearer tokens has none such: each repository gets its own client
// (client), as ggcr's calls do.
func newPushRun(ctx context.Context, t *registry.Target, o Options, tagSet *TagSet, sum *Summary) (*pushRun, error) {
	if t.Authorized() == nil {
		if err := t.Ping(ctx); err != nil {
			return nil, err
		}
	}
	extra := []remote.Option{remote.WithJobs(o.Jobs)}
	var shared *http.Client
	if rt := t.Authorized(); rt != nil {
		extra = append(extra, remote.WithTransport(rt))
		shared = &http.Client{Transport: rt}
	}
	ropts := t.Options(ctx, extra...)
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	c := t.Config
	lock, err := taglock.Open(c)
	if err != nil {
		return nil, err
	}
	return &pushRun{o: o, c: c, t: t, reg: t.Registry, shared: shared, clients: map[string]*http.Client{}, pusher: pusher, puller: puller,
		sum: sum, tags: tagSet, ropts: ropts, lock: lock, slots: make(chan struct{}, o.Jobs), blobs: map[v1.Hash]*blobState{}}, nil
}

// selectSources discovers the deploy tree (or reads the given path) and
// groups what to push by image name.
func selectSources(ctx context.Context, c *config.Config, o Options) ([]*group, *deploy.Result, error) {
	if o.Target != "" && isPath(o.Target) {
		src, err := deploy.LoadPath(ctx, o.Target)
		if err != nil {
			return nil, nil, err
		}
		return []*group{{name: src.Name, sources: []*deploy.Source{src}}}, &deploy.Result{}, nil
	}
	res, err := deploy.Discover(ctx, c.DeployDirImages, c.DeployDirImage)
	if err != nil {
		return nil, nil, err
	}
	want := o.Images
	if o.Target != "" {
		want = []string{o.Target}
	}
	available := res.Names()
	for _, w := range want {
		if !slices.Contains(available, w) {
			avail := "none"
			if len(available) > 0 {
				avail = strings.Join(available, ", ")
			}
			return nil, nil, fmt.Errorf("no image named %q (not found in %s; available: %s)", w, strings.Join(res.Roots, ", "), avail)
		}
	}
	byName := map[string]*group{}
	var groups []*group
	for _, s := range res.Sources {
		if len(want) > 0 && !slices.Contains(want, s.Name) {
			continue
		}
		g := byName[s.Name]
		if g == nil {
			g = &group{name: s.Name}
			byName[s.Name] = g
			groups = append(groups, g)
		}
		g.sources = append(g.sources, s)
	}
	if len(want) > 0 {
		var broken []deploy.Skipped
		for _, b := range res.Broken {
			if slices.Contains(want, b.Name) {
				broken = append(broken, b)
			}
		}
		res.Broken = broken
	}
	return groups, res, nil
}

// isPath tells a layout path from an image name.
func isPath(s string) bool {
	if strings.ContainsRune(s, '/') || strings.HasPrefix(s, ".") {
		return true
	}
	_, err := os.Stat(filepath.Join(s, "index.json"))
	return err == nil
}

// pushRun is the state of one Push. The images of a run are pushed
// concurrently (pushAll); what they share is guarded by mu.
type pushRun struct {
	o   Options
	c   *config.Config
	t   *registry.Target
	reg name.Registry
	// shared is the run's one authenticated client (nil for a registry of
	// bearer tokens): every request of the run goes through its
	// transport, pusher's and puller's too.
	shared *http.Client
	pusher *remote.Pusher
	puller *remote.Puller
	// lock guards the read-modify-writes of tag indexes; when every push
	// to the registry takes it, no settle delay is needed after writing
	// tags.
	lock  *taglock.Lock
	tags  *TagSet
	ropts []remote.Option
	// slots is the run's budget: a blob's HEAD, or its upload (POST and
	// PUT), holds one slot, whichever image it belongs to.
	slots chan struct{}
	// sent counts the bytes of blob upload bodies, done those and the
	// bytes of blobs found in the registry (the progress bar).
	sent, done atomic.Int64
	// emitMu lets one image at a time emit its block of events.
	emitMu sync.Mutex

	mu  sync.Mutex // guards what follows
	sum *Summary
	// written are the tags this run wrote, fallbacks the referrers tags it
	// merged into: both checked again at the end (verifyTags).
	written, fallbacks []written
	// blobs says where each blob went in this run, for cross-repository
	// mounts (blobs.go).
	blobs map[v1.Hash]*blobState
	// signed are the manifests (repository@digest) this run has signed,
	// or found signed; signJobs the signatures asked for, signSlots and
	// signWG their background work (signing.go).
	signed    map[string]bool
	signJobs  []*signJob
	signSlots chan struct{}
	signWG    sync.WaitGroup
	// clients are the clients of each repository when there is no shared
	// one.
	clients map[string]*http.Client
}

// client returns the authenticated client for requests to repo: the
// shared one, or one of repo's own (set up once: it pings the registry
// and fetches a token).
func (p *pushRun) client(ctx context.Context, repo name.Repository) (*http.Client, error) {
	if p.shared != nil {
		return p.shared, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cl, ok := p.clients[repo.String()]; ok {
		return cl, nil
	}
	cl, err := p.t.Client(ctx, repo, transport.PushScope, p.t.Transport)
	if err != nil {
		return nil, err
	}
	p.clients[repo.String()] = cl
	return cl, nil
}

// written is a tag this run wrote, checked again at the end.
type written struct {
	group string
	ref   name.Tag
	wants []v1.Descriptor
}

// settleDelay is how long a run waits before checking its tags once more.
const settleDelay = 150 * time.Millisecond

// settleWait waits d; false when ctx ends first.
func settleWait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// verifyTags reads every written tag back once more after a short delay:
// a push from another host that read the tag before this run wrote it
// may have replaced our entries; such a tag is merged again. It is skipped
// when every push to the registry takes the tag lock around its
// read-modify-writes (push.lock of the local registry, redis of
// replicas), so such a push does not pay the delay.
func (p *pushRun) verifyTags(ctx context.Context) {
	if len(p.written)+len(p.fallbacks) == 0 || p.lock.Guards() {
		return
	}
	if !p.o.settle(ctx, settleDelay) {
		return
	}
	p.verifyReferrers(ctx)
	tw := &TagWriter{Pusher: p.pusher, Puller: p.puller, Lock: p.lock}
	for _, w := range p.written {
		ok, err := tw.Holds(ctx, w.ref, w.wants)
		if err == nil && !ok {
			p.o.Events.Emit(Remerged{Tag: w.ref.TagStr()})
			_, err = tw.Write(ctx, w.ref, w.wants, nil)
		}
		if err != nil {
			p.o.Events.Emit(ImageFailed{Image: w.group, Err: err})
			p.failed(w.group)
		}
	}
}

// failed adds image to the summary's failures, once.
func (p *pushRun) failed(image string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.sum.Failed, image) {
		p.sum.Failed = append(p.sum.Failed, image)
	}
}

// storageFull explains a failed upload to the registry served from this
// storage when its file system has less room than the blob: the registry
// itself only reports a broken upload.
func (p *pushRun) storageFull(need int64) string {
	if !p.lock.LocalDisk() {
		return ""
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(p.c.DataDir(), &st); err != nil {
		return ""
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free >= need {
		return ""
	}
	return fmt.Sprintf(" (no space left on device: the registry storage %s has %s free)", p.c.DataDir(), tasks.HumanBytes(free))
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
