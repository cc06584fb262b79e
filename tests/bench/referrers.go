package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// The referrers query: a repository with 1,000 tagged images, each with
// two referrers (an SBOM and a package list: 2,000 in all), plus one image
// with 2,000 referrers of its own. Ours answers the referrers API; the
// baseline is what an OCI 1.1 client reads from docker-registry 2.8, which
// has no such API: the fallback tag sha256-<hex> holding an index of the
// same descriptors.

const (
	refTags       = 1000
	refPerImage   = 2
	refOneSubject = 2000
	refQueries    = 100 // queries per timed run
)

var emptyBlob = []byte("{}")

// seeder writes content to one registry over plain HTTP.
type seeder struct {
	ctx      context.Context
	addr     string
	client   *http.Client
	fallback bool // also write the fallback tag indexes (docker-registry)
}

func (s *seeder) blob(repo string, data []byte) (v1.Descriptor, error) {
	d, n, _ := v1.SHA256(bytes.NewReader(data))
	loc, err := startUpload(s.ctx, s.addr, repo)
	if err != nil {
		return v1.Descriptor{}, err
	}
	resp, err := s.do(http.MethodPut, withDigest(loc, d), "application/octet-stream", data)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if resp.StatusCode != http.StatusCreated {
		return v1.Descriptor{}, fmt.Errorf("PUT blob %s: %s", d, resp.Status)
	}
	return v1.Descriptor{Digest: d, Size: n}, nil
}

func (s *seeder) do(method, url, ctype string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(s.ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", string(types.OCIImageIndex)+", "+string(types.OCIManifestSchema1))
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// manifest PUTs m to repo:ref and returns its descriptor.
func (s *seeder) manifest(repo, ref string, mt types.MediaType, m any) (v1.Descriptor, error) {
	body, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	d, n, _ := v1.SHA256(bytes.NewReader(body))
	if ref == "" {
		ref = d.String()
	}
	resp, err := s.do(http.MethodPut, "http://"+s.addr+"/v2/"+repo+"/manifests/"+ref, string(mt), body)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if resp.StatusCode != http.StatusCreated {
		return v1.Descriptor{}, fmt.Errorf("PUT manifest %s:%s: %s", repo, ref, resp.Status)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: n}, nil
}

// image stores a small image of its own config in repo, tagged tag.
func (s *seeder) image(repo, tag string, layer v1.Descriptor) (v1.Descriptor, error) {
	cfg, err := s.blob(repo, fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{"Labels":{"n":%q}}}`, layer.Digest, tag))
	if err != nil {
		return v1.Descriptor{}, err
	}
	cfg.MediaType = types.OCIConfigJSON
	return s.manifest(repo, tag, types.OCIManifestSchema1, map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": cfg, "layers": []v1.Descriptor{layer},
	})
}

// referrer stores artifact number i of type at for subject.
func (s *seeder) referrer(repo string, subject v1.Descriptor, at string, i int) (v1.Descriptor, error) {
	empty := v1.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Size: 2}
	empty.Digest, _, _ = v1.SHA256(bytes.NewReader(emptyBlob))
	ann := map[string]string{"org.opencontainers.image.created": "2026-11-27T00:00:00Z", "org.example.n": fmt.Sprint(i)}
	d, err := s.manifest(repo, "", types.OCIManifestSchema1, map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": at,
		"config": empty, "layers": []v1.Descriptor{empty}, "subject": subject, "annotations": ann,
	})
	d.ArtifactType, d.Annotations = at, ann
	return d, err
}

// fallbackIndex writes the referrers tag of subject (docker-registry).
func (s *seeder) fallbackIndex(repo string, subject v1.Hash, refs []v1.Descriptor) error {
	_, err := s.manifest(repo, "sha256-"+subject.Hex, types.OCIImageIndex, map[string]any{
		"schemaVersion": 2, "mediaType": types.OCIImageIndex, "manifests": refs,
	})
	return err
}

// withReferrers stores one image tagged tag with n referrers.
func (s *seeder) withReferrers(repo, tag string, layer v1.Descriptor, n int) (v1.Hash, error) {
	img, err := s.image(repo, tag, layer)
	if err != nil {
		return v1.Hash{}, err
	}
	types := []string{"application/spdx+json", "text/plain"}
	var refs []v1.Descriptor
	for i := range n {
		d, err := s.referrer(repo, img, types[i%len(types)], i)
		if err != nil {
			return v1.Hash{}, err
		}
		refs = append(refs, d)
	}
	if s.fallback {
		return img.Digest, s.fallbackIndex(repo, img.Digest, refs)
	}
	return img.Digest, nil
}

// common stores the layer every image shares and the empty blob.
func (s *seeder) common(repo string) (v1.Descriptor, error) {
	layer, err := s.blob(repo, bytes.Repeat([]byte("layer "), 100))
	if err != nil {
		return layer, err
	}
	layer.MediaType = types.OCIUncompressedLayer
	_, err = s.blob(repo, emptyBlob)
	return layer, err
}

// seed writes repo with 1,000 tagged images with two referrers each
// (returned), and repoOne with one image with 2,000 referrers.
func (s *seeder) seed(repo, repoOne string) (many []v1.Hash, one v1.Hash, err error) {
	layer, err := s.common(repo)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	many = make([]v1.Hash, refTags)
	g, _ := errgroup.WithContext(s.ctx)
	g.SetLimit(4)
	for i := range refTags {
		g.Go(func() error {
			var err error
			many[i], err = s.withReferrers(repo, fmt.Sprintf("t%04d", i), layer, refPerImage)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, v1.Hash{}, err
	}
	if layer, err = s.common(repoOne); err != nil {
		return nil, v1.Hash{}, err
	}
	one, err = s.withReferrers(repoOne, "latest", layer, refOneSubject)
	return many, one, err
}

// getIndex GETs url and checks that it is an image index of want
// descriptors; it returns the Link header.
func getIndex(ctx context.Context, c *http.Client, url string, want int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", string(types.OCIImageIndex))
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var im v1.IndexManifest
	if err := json.NewDecoder(resp.Body).Decode(&im); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s (%v)", url, resp.Status, err)
	}
	if want >= 0 && len(im.Manifests) != want {
		return "", fmt.Errorf("GET %s: %d descriptors, want %d", url, len(im.Manifests), want)
	}
	return resp.Header.Get("Link"), nil
}

// measureReferrers: the referrers query on our server against the
// fallback tag read on docker-registry, same content.
func (b *bench) measureReferrers() error {
	o, err := b.newOurs("referrers", nil)
	if err != nil {
		return err
	}
	d, err := b.newDocker("referrers-docker")
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	type side struct {
		addr     string
		fallback bool
		many     []v1.Hash
		one      v1.Hash
		q1, qAll []time.Duration
	}
	sides := []*side{{addr: o.Addr()}, {addr: d.Addr(), fallback: true}}
	for i, r := range []registry{o, d} {
		if _, err := r.Start(b.ctx); err != nil {
			return err
		}
		b.logf("seeding %s: %d tags, %d referrers, and one image with %d", r.Addr(), refTags, refTags*refPerImage, refOneSubject)
		s := &seeder{ctx: b.ctx, addr: r.Addr(), client: client, fallback: sides[i].fallback}
		if sides[i].many, sides[i].one, err = s.seed("bench/refs", "bench/refs-one"); err != nil {
			return err
		}
	}
	for run := range b.runs {
		b.logf("referrers run %d/%d", run+1, b.runs)
		if err := orderFor(run, func() error {
			return b.queryRun(client, sides[0].addr, false, sides[0].many, sides[0].one, &sides[0].q1, &sides[0].qAll)
		},
			func() error {
				return b.queryRun(client, sides[1].addr, true, sides[1].many, sides[1].one, &sides[1].q1, &sides[1].qAll)
			}); err != nil {
			return err
		}
	}
	r1 := seconds(sides[0].q1).median() / seconds(sides[1].q1).median()
	b.add(row{Name: fmt.Sprintf("referrers query: one image of %d tags, %d referrers in the repository", refTags, refTags*refPerImage), Ours: seconds(sides[0].q1), Base: seconds(sides[1].q1),
		BaseName: "docker-registry, fallback tag index", Unit: unitSeconds, Ratio: r1, RatioText: "of the fallback read", Goal: "≤ 2.0× and ≤ 5 ms", Met: boolp(r1 <= 2 && seconds(sides[0].q1).median() <= 0.005)})
	b.add(row{Name: fmt.Sprintf("  all %d referrers of one image (pages of 1,000 via Link)", refOneSubject), Ours: seconds(sides[0].qAll), Base: seconds(sides[1].qAll),
		BaseName: "docker-registry, fallback tag index", Unit: unitSeconds, Ratio: math.NaN(), Goal: "report"})
	b.notef("referrers: the first row is the mean of %d queries of different images per run; ours answers from per-subject records, so the repository's size does not enter.", refQueries)
	return nil
}

// queryRun times refQueries referrers queries of different images, then
// one full listing of the image with 2,000 referrers.
func (b *bench) queryRun(c *http.Client, addr string, fallback bool, many []v1.Hash, one v1.Hash, q1, qAll *[]time.Duration) error {
	url := func(repo string, h v1.Hash) string {
		if fallback {
			return "http://" + addr + "/v2/" + repo + "/manifests/sha256-" + h.Hex
		}
		return "http://" + addr + "/v2/" + repo + "/referrers/" + h.String()
	}
	start := time.Now()
	for i := range refQueries {
		if _, err := getIndex(b.ctx, c, url("bench/refs", many[(i*37)%len(many)]), refPerImage); err != nil {
			return err
		}
	}
	*q1 = append(*q1, time.Since(start)/refQueries)
	start = time.Now()
	next := url("bench/refs-one", one)
	for next != "" {
		link, err := getIndex(b.ctx, c, next, -1)
		if err != nil {
			return err
		}
		next = ""
		if link != "" {
			next = "http://" + addr + link[1:strings.Index(link, ">")]
		}
	}
	*qAll = append(*qAll, time.Since(start))
	return nil
}
