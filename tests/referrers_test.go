package tests

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The referrers API of `serve` (OCI distribution-spec 1.1), seen through
// plain HTTP requests and go-containerregistry's remote.Referrers.

// emptyJSON is the OCI empty descriptor's content.
const emptyJSON = "{}"

// regHTTP talks to the registry of e over its scheme, with its CA and
// password when it has them.
type regHTTP struct {
	base   string
	client *http.Client
	user   string
	pass   string
}

func (e *Env) regHTTP(t *testing.T) *regHTTP {
	t.Helper()
	r := &regHTTP{base: "http://" + e.URL, client: &http.Client{Timeout: 30 * time.Second}}
	if pem, err := os.ReadFile(filepath.Join(e.Storage, "pki", "ca.crt")); err == nil {
		r.base = "https://" + e.URL
		r.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: newPool(t, pem)}}
		pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
		if err != nil {
			t.Fatal(err)
		}
		r.user, r.pass = "yocto", strings.TrimSpace(string(pw))
	}
	return r
}

// do sends one request (path below /v2/, or a whole URL path) and returns
// the response with its body read.
func (r *regHTTP) do(t *testing.T, method, path string, body []byte, ctype string, anonymous bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if strings.Contains(path, "/manifests/") {
		req.Header.Set("Accept", strings.Join([]string{string(types.OCIManifestSchema1), string(types.OCIImageIndex), string(types.DockerManifestSchema2), string(types.DockerManifestList)}, ", "))
	}
	if r.user != "" && !anonymous {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

// artifact is an OCI artifact manifest with subject, artifactType and one
// annotation, its config and layer the empty descriptor.
func artifact(subject v1.Descriptor, artifactType, note string) []byte {
	empty := map[string]any{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digestOf([]byte(emptyJSON)), "size": 2}
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     string(types.OCIManifestSchema1),
		"artifactType":  artifactType,
		"config":        empty,
		"layers":        []any{empty},
		"subject":       map[string]any{"mediaType": string(subject.MediaType), "digest": subject.Digest.String(), "size": subject.Size},
		"annotations":   map[string]string{"org.example.note": note},
	}
	b, _ := json.Marshal(m)
	return b
}

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}

// putArtifact pushes body by digest to repo and checks the 201 and its
// OCI-Subject header; it returns the artifact's descriptor.
func (r *regHTTP) putArtifact(t *testing.T, repo string, body []byte, subject v1.Hash) v1.Descriptor {
	t.Helper()
	d := digestOf(body)
	resp, data := r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+d, body, string(types.OCIManifestSchema1), false)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s\n%s", d, resp.Status, data)
	}
	if got := resp.Header.Get("OCI-Subject"); got != subject.String() {
		t.Errorf("PUT %s: OCI-Subject %q, want %s", d, got, subject)
	}
	h, _ := v1.NewHash(d)
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: h, Size: int64(len(body))}
}

// referrers GETs one page of the referrers of subject in repo (query
// appended as is) and returns the index and the response.
func (r *regHTTP) referrers(t *testing.T, repo string, subject v1.Hash, query string) (*v1.IndexManifest, *http.Response) {
	t.Helper()
	path := "/v2/" + repo + "/referrers/" + subject.String() + query
	resp, data := r.do(t, http.MethodGet, path, nil, "", false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", path, resp.Status, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != string(types.OCIImageIndex) {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(data, &im); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, data)
	}
	if im.SchemaVersion != 2 || im.MediaType != types.OCIImageIndex || im.Manifests == nil {
		t.Errorf("GET %s: not an OCI image index with a manifests array:\n%s", path, data)
	}
	return &im, resp
}

// referrerSet lists the referrers of subject with go-containerregistry's
// OCI 1.1 client: digest -> artifact type.
func (e *Env) referrerSet(t *testing.T, repo string, subject v1.Hash) map[string]string {
	t.Helper()
	ref, err := name.NewDigest(e.URL+"/"+repo+"@"+subject.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(ref, e.remoteOpts(t)...)
	if err != nil {
		t.Fatalf("remote.Referrers %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range im.Manifests {
		out[d.Digest.String()] = d.ArtifactType
	}
	return out
}

// pushSubject writes a small random image to repo:tag with
// go-containerregistry and the empty blob artifacts use.
func (e *Env) pushSubject(t *testing.T, repo, tag string) v1.Descriptor {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(e.URL+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, e.remoteOpts(t)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(ref.Context(), static.NewLayer([]byte(emptyJSON), "application/vnd.oci.empty.v1+json"), e.remoteOpts(t)...); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	return v1.Descriptor{MediaType: types.DockerManifestSchema2, Digest: d, Size: int64(len(raw))}
}

// recordFiles are the referrer record files of repo on disk.
func recordFiles(e *Env, repo string) []string {
	var out []string
	root := filepath.Join(e.Storage, "data", "ocireg", "v1", "referrers", repo)
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func sameSet(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: referrers %v, want %v", what, got, want)
	}
}

// Manifests with a subject are stored and answered with OCI-Subject; the
// referrers query lists them with artifact type and annotations, filters
// by artifactType, pages with Link, answers an empty index for a subject
// without referrers and 400 for a bad digest, asks for the same
// credentials as the rest (TLS + htpasswd), survives a restart and forgets
// a deleted referrer. gc keeps the referrers (and a referrer's referrer)
// of a tagged image, also with --delete-untagged, and removes them with
// their records once the image is gone; verify is clean throughout.
func TestReferrersAPI(t *testing.T) {
	for _, mode := range []struct {
		name string
		vars map[string]string
	}{
		{"http", nil},
		{"tls-auth", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := NewEnv(t, mode.vars)
			e.mustRun(t, 0, "start")
			r := e.regHTTP(t)
			const repo = "yocto/refs"
			subj := e.pushSubject(t, repo, "v1")
			sbom := r.putArtifact(t, repo, artifact(subj, "application/spdx+json", "sbom"), subj.Digest)
			cve := r.putArtifact(t, repo, artifact(subj, "application/spdx+json", "cve"), subj.Digest)
			list := r.putArtifact(t, repo, artifact(subj, "text/plain", "packages"), subj.Digest)
			sig := r.putArtifact(t, repo, artifact(sbom, "application/vnd.example.signature", "sig"), sbom.Digest)
			want := map[string]string{sbom.Digest.String(): "application/spdx+json", cve.Digest.String(): "application/spdx+json", list.Digest.String(): "text/plain"}
			sameSet(t, "remote.Referrers", e.referrerSet(t, repo, subj.Digest), want)
			sameSet(t, "referrers of the SBOM", e.referrerSet(t, repo, sbom.Digest), map[string]string{sig.Digest.String(): "application/vnd.example.signature"})

			// The registry browser lists them on the image page.
			if resp, page := r.do(t, http.MethodGet, "/ui/"+repo+":v1", nil, "", false); resp.StatusCode != http.StatusOK ||
				!bytes.Contains(page, []byte(`class="artifacts"`)) || bytes.Count(page, []byte("<td>application/spdx&#43;json</td>")) != 2 || !bytes.Contains(page, []byte("<td>text/plain</td>")) {
				t.Errorf("image page: %s, attached artifacts not listed:\n%s", resp.Status, page)
			}

			im, resp := r.referrers(t, repo, subj.Digest, "?artifactType=application/spdx%2Bjson")
			if len(im.Manifests) != 2 || resp.Header.Get("OCI-Filters-Applied") != "artifactType" {
				t.Errorf("artifactType filter: %d descriptors, OCI-Filters-Applied %q", len(im.Manifests), resp.Header.Get("OCI-Filters-Applied"))
			}
			for _, d := range im.Manifests {
				if d.Annotations["org.example.note"] == "" || d.MediaType != types.OCIManifestSchema1 || d.Size == 0 {
					t.Errorf("descriptor without annotation, media type or size: %+v", d)
				}
			}
			if _, resp := r.referrers(t, repo, subj.Digest, ""); resp.Header.Get("OCI-Filters-Applied") != "" || resp.Header.Get("Link") != "" {
				t.Errorf("unfiltered single page: OCI-Filters-Applied %q, Link %q", resp.Header.Get("OCI-Filters-Applied"), resp.Header.Get("Link"))
			}
			checkPages(t, r, repo, subj.Digest, want)

			none, _ := v1.NewHash(digestOf([]byte("no such manifest")))
			if im, _ := r.referrers(t, repo, none, ""); len(im.Manifests) != 0 {
				t.Errorf("referrers of an unknown digest: %v", im.Manifests)
			}
			if resp, _ := r.do(t, http.MethodGet, "/v2/"+repo+"/referrers/sha256:nothex", nil, "", false); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("bad digest: %s, want 400", resp.Status)
			}
			if mode.vars != nil {
				resp, _ := r.do(t, http.MethodGet, "/v2/"+repo+"/referrers/"+subj.Digest.String(), nil, "", true)
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("referrers without credentials: %s, WWW-Authenticate %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
				}
				resp, _ = r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+digestOf(artifact(subj, "x/y", "anon")), artifact(subj, "x/y", "anon"), string(types.OCIManifestSchema1), true)
				if resp.StatusCode != http.StatusUnauthorized || len(recordFiles(e, repo)) != 4 {
					t.Errorf("PUT without credentials: %s, %d records", resp.Status, len(recordFiles(e, repo)))
				}
			}

			e.mustRun(t, 0, "restart")
			sameSet(t, "after restart", e.referrerSet(t, repo, subj.Digest), want)

			if resp, data := r.do(t, http.MethodDelete, "/v2/"+repo+"/manifests/"+list.Digest.String(), nil, "", false); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("DELETE %s: %s\n%s", list.Digest, resp.Status, data)
			}
			delete(want, list.Digest.String())
			sameSet(t, "after DELETE", e.referrerSet(t, repo, subj.Digest), want)
			if n := len(recordFiles(e, repo)); n != 3 {
				t.Errorf("%d records after DELETE, want 3: %v", n, recordFiles(e, repo))
			}
			lostRecord(t, e, r, repo, subj.Digest, artifact(subj, "application/spdx+json", "cve"), cve.Digest.String())
			referrersGC(t, e, r, repo, subj, want, sig)
		})
	}
}

// checkPages reads the referrers two at a time through the Link headers.
func checkPages(t *testing.T, r *regHTTP, repo string, subject v1.Hash, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	query, pages := "?n=2", 0
	for {
		im, resp := r.referrers(t, repo, subject, query)
		pages++
		if len(im.Manifests) > 2 || pages > len(want) {
			t.Fatalf("page %d: %d descriptors", pages, len(im.Manifests))
		}
		for _, d := range im.Manifests {
			got[d.Digest.String()] = d.ArtifactType
		}
		link := resp.Header.Get("Link")
		if link == "" {
			break
		}
		prefix := "</v2/" + repo + "/referrers/" + subject.String()
		if !strings.HasPrefix(link, prefix) || !strings.HasSuffix(link, `>; rel="next"`) {
			t.Fatalf("Link %q", link)
		}
		query = strings.TrimSuffix(strings.TrimPrefix(link, prefix), `>; rel="next"`)
	}
	if pages != (len(want)+1)/2 {
		t.Errorf("%d pages of 2 for %d referrers", pages, len(want))
	}
	sameSet(t, "pages", got, want)
}

// referrersGC runs gc with --delete-untagged while the image is tagged
// (its referrers and the signature of one stay), then deletes the image
// and collects again: its referrers and their records go.
func referrersGC(t *testing.T, e *Env, r *regHTTP, repo string, subj v1.Descriptor, want map[string]string, sig v1.Descriptor) {
	t.Helper()
	// An SBOM of one platform of a tagged multi-platform image: its
	// subject is untagged, but the tag's index keeps it.
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	const multi = "yocto/refs-multi"
	ref, _ := name.NewTag(e.URL+"/"+multi+":latest", name.Insecure)
	if err := remote.WriteIndex(ref, idx, e.remoteOpts(t)...); err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(ref.Context(), static.NewLayer([]byte(emptyJSON), "application/vnd.oci.empty.v1+json"), e.remoteOpts(t)...); err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	platSBOM := r.putArtifact(t, multi, artifact(im.Manifests[1], "application/spdx+json", "platform"), im.Manifests[1].Digest)

	res := e.mustRun(t, 0, "gc", "--delete-untagged", "--yes")
	sameSet(t, "after gc --delete-untagged", e.referrerSet(t, repo, subj.Digest), want)
	sameSet(t, "SBOM of a platform after gc --delete-untagged", e.referrerSet(t, multi, im.Manifests[1].Digest), map[string]string{platSBOM.Digest.String(): "application/spdx+json"})
	for d := range want {
		if resp, _ := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+d, nil, "", false); resp.StatusCode != http.StatusOK {
			t.Errorf("referrer %s after gc: %s\n%s", d, resp.Status, res.Out())
		}
	}
	if resp, _ := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+sig.Digest.String(), nil, "", false); resp.StatusCode != http.StatusOK {
		t.Errorf("the referrer of a referrer went with gc: %s", resp.Status)
	}
	if v := e.Run("verify"); v.Code != 0 || !strings.Contains(v.Stdout, "4 referrer record(s)") {
		t.Errorf("verify after gc: exit %d\n%s", v.Code, v.Out())
	}
	if resp, data := r.do(t, http.MethodDelete, "/v2/"+repo+"/manifests/"+subj.Digest.String(), nil, "", false); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE the image: %s\n%s", resp.Status, data)
	}
	res = e.mustRun(t, 0, "gc", "--delete-untagged", "--yes")
	for d := range want {
		if resp, _ := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+d, nil, "", false); resp.StatusCode != http.StatusNotFound {
			t.Errorf("referrer %s of a deleted image after gc --delete-untagged: %s\n%s", d, resp.Status, res.Out())
		}
	}
	if im, _ := r.referrers(t, repo, subj.Digest, ""); len(im.Manifests) != 0 {
		t.Errorf("referrers of a deleted image: %v", im.Manifests)
	}
	if files := recordFiles(e, repo); len(files) != 0 {
		t.Errorf("records left after gc: %v", files)
	}
	if v := e.Run("verify"); v.Code != 0 {
		t.Errorf("verify after the image went: exit %d\n%s", v.Code, v.Out())
	}
}

// lostRecord removes the record of referrer (body) from the storage, as a
// registry from before referrers support would have left it: verify names
// the manifest, and pushing it again records it.
func lostRecord(t *testing.T, e *Env, r *regHTTP, repo string, subject v1.Hash, body []byte, referrer string) {
	t.Helper()
	file := filepath.Join(e.Storage, "data", "ocireg", "v1", "referrers", repo, "_subjects", "sha256", subject.Hex, strings.Replace(referrer, ":", "-", 1))
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	v := e.Run("verify")
	if v.Code != 1 || !strings.Contains(v.Stdout, repo+"@"+referrer+": its subject is "+subject.String()+", but it is missing from the referrers") {
		t.Errorf("verify with a lost record: exit %d\n%s", v.Code, v.Out())
	}
	r.putArtifact(t, repo, body, subject)
	if v := e.Run("verify"); v.Code != 0 {
		t.Errorf("verify after pushing again: exit %d\n%s", v.Code, v.Out())
	}
}
