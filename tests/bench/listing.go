package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The listing store: listingRepos repositories of listingTags tags each,
// every tag its own single-platform image (one small layer and the config
// shared by the repository's tags; the manifests differ by an annotation).
const (
	listingRepos = 1000
	listingTags  = 10
)

// measureListing: list, catalog, tags --json and the registry browser's
// index page on listingRepos × listingTags, each cold (the registry just
// restarted) and warm (the same command again); list against reading the
// same through go-containerregistry's remote.Catalog and remote.List
// directly, cold and warm alike.
func (b *bench) measureListing() error {
	o, err := b.newOurs("listing", nil)
	if err != nil {
		return err
	}
	if _, err := o.Start(b.ctx); err != nil {
		return err
	}
	b.logf("pushing %d repositories × %d tags", listingRepos, listingTags)
	pushStart := time.Now()
	if err := populateListing(b.ctx, o.Addr()); err != nil {
		return err
	}
	b.logf("pushed in %s", time.Since(pushStart).Round(time.Millisecond))

	ns := "yocto/" // the generated default namespace
	var listCold, listWarm, ggcrCold, ggcrWarm, catCold, catWarm, tagsCold, tagsWarm, uiCold, uiWarm []time.Duration
	var want []string // list --json, checked against ggcr's reading
	cli := func(out *[]time.Duration, args ...string) func() error {
		return func() error {
			r, err := o.Run(b.ctx, args...)
			if err != nil {
				return err
			}
			*out = append(*out, r.Elapsed)
			if args[0] == "list" {
				want = append(want, r.Stdout)
			}
			return nil
		}
	}
	direct := func(out *[]time.Duration) func() error {
		return func() error {
			start := time.Now()
			n, err := ggcrList(b.ctx, o.Addr())
			if err != nil {
				return err
			}
			*out = append(*out, time.Since(start))
			if n != listingRepos*listingTags {
				return fmt.Errorf("go-containerregistry read %d tags, want %d", n, listingRepos*listingTags)
			}
			return nil
		}
	}
	page := func(out *[]time.Duration) func() error {
		return func() error {
			start := time.Now()
			if err := getPage(b.ctx, "http://"+o.Addr()+"/ui/"); err != nil {
				return err
			}
			*out = append(*out, time.Since(start))
			return nil
		}
	}
	restart := func() error {
		if err := o.Stop(); err != nil {
			return err
		}
		_, err := o.Start(b.ctx)
		return err
	}
	image := fmt.Sprintf("%srepo-%04d", ns, listingRepos/2)
	for i := range b.runs {
		// Each side cold (after a restart), then warm.
		steps := []struct {
			cold, warm func() error
		}{
			{cli(&listCold, "list", "--json"), cli(&listWarm, "list", "--json")},
			{direct(&ggcrCold), direct(&ggcrWarm)},
			{cli(&catCold, "catalog"), cli(&catWarm, "catalog")},
			{cli(&tagsCold, "tags", image, "--json"), cli(&tagsWarm, "tags", image, "--json")},
			{page(&uiCold), page(&uiWarm)},
		}
		if i%2 == 1 { // list and its baseline take turns going first
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			if err := restart(); err != nil {
				return err
			}
			if err := s.cold(); err != nil {
				return err
			}
			if err := s.warm(); err != nil {
				return err
			}
		}
	}
	if err := checkListOutput(want); err != nil {
		return err
	}
	scale := fmt.Sprintf("%s tags over %s repositories", thousands(listingRepos*listingTags), thousands(listingRepos))
	for _, x := range []struct {
		name       string
		ours, base []time.Duration
	}{{"cold", listCold, ggcrCold}, {"warm", listWarm, ggcrWarm}} {
		ratio := seconds(x.ours).median() / seconds(x.base).median()
		n := "listing at scale: `list --json`, " + scale + " (" + x.name + ")"
		if x.name == "warm" {
			n = "  `list --json` (warm)"
		}
		b.add(row{Name: n, Ours: seconds(x.ours), Base: seconds(x.base), BaseName: "go-containerregistry remote.Catalog + remote.List, " + x.name, Unit: unitSeconds,
			Ratio: ratio, RatioText: "of go-containerregistry's", Goal: "≤ 2.0×", Met: boolp(ratio <= 2)})
	}
	for _, x := range []struct {
		name       string
		cold, warm []time.Duration
	}{
		{"`catalog`", catCold, catWarm},
		{"`tags --json` of one image (" + fmt.Sprint(listingTags) + " tags)", tagsCold, tagsWarm},
		{"registry browser index page (250 of the repositories, every tag read)", uiCold, uiWarm},
	} {
		b.add(row{Name: "  " + x.name + " (cold)", Ours: seconds(x.cold), Unit: unitSeconds, Ratio: math.NaN(), Goal: "report"})
		b.add(row{Name: "  " + x.name + " (warm)", Ours: seconds(x.warm), Unit: unitSeconds, Ratio: math.NaN(), Goal: "report"})
	}
	return o.Stop()
}

// populateListing pushes listingRepos repositories of listingTags tags,
// eight repositories at a time.
func populateListing(ctx context.Context, addr string) error {
	base, err := random.Image(512, 1)
	if err != nil {
		return err
	}
	pusher, err := remote.NewPusher(remote.WithContext(ctx))
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for r := range listingRepos {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := pushListingRepo(ctx, pusher, addr, r, base)
			mu.Lock()
			if err != nil && first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return first
}

func pushListingRepo(ctx context.Context, pusher *remote.Pusher, addr string, r int, base v1.Image) error {
	for t := range listingTags {
		img := mutate.Annotations(base, map[string]string{"org.example.bench": fmt.Sprintf("%d-%d", r, t)}).(v1.Image)
		ref, err := name.NewTag(fmt.Sprintf("%s/yocto/repo-%04d:build-%02d", addr, r, t), name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx), remote.Reuse(pusher)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
	}
	return nil
}

// ggcrList reads every repository and its tags as a client of
// go-containerregistry would, one request after another, and returns how
// many tags it read.
func ggcrList(ctx context.Context, addr string) (int, error) {
	reg, err := name.NewRegistry(addr, name.Insecure)
	if err != nil {
		return 0, err
	}
	repos, err := remote.Catalog(ctx, reg)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range repos {
		repo := reg.Repo(r)
		tags, err := remote.List(repo, remote.WithContext(ctx))
		if err != nil {
			return 0, err
		}
		n += len(tags)
	}
	return n, nil
}

// getPage GETs url and reads the whole answer, which must be 200.
func getPage(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// checkListOutput checks that every `list --json` printed the same, every
// repository with all its tags.
func checkListOutput(outs []string) error {
	for i, out := range outs {
		if out != outs[0] {
			return fmt.Errorf("list --json run %d printed other output than run 0", i)
		}
		var repos []struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal([]byte(out), &repos); err != nil {
			return fmt.Errorf("list --json: %w", err)
		}
		n := 0
		for _, r := range repos {
			n += len(r.Tags)
		}
		if len(repos) != listingRepos || n != listingRepos*listingTags {
			return fmt.Errorf("list --json: %d repositories, %d tags; want %d, %d", len(repos), n, listingRepos, listingRepos*listingTags)
		}
	}
	return nil
}

// thousands writes n with a comma every three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
