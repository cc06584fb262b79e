package ui

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"

	"github.com/ocireg-tool/ocireg-tool/tasks"
)

// perPage is how many repositories one index page shows. Up to that many
// the filter box works in the browser without a round trip; beyond, it
// asks the server (and always does without JavaScript).
const perPage = 250

// buildLabels are the labels the image page shows first, in this order.
var buildLabels = []string{
	"org.opencontainers.image.revision",
	"org.opencontainers.image.ref.name",
	"org.opencontainers.image.created",
	"org.opencontainers.image.version",
}

var funcs = template.FuncMap{
	"bytes": tasks.HumanBytes,
	"short": func(s any) string {
		str := fmt.Sprint(s)
		if _, hex, ok := strings.Cut(str, ":"); ok && len(hex) > 12 {
			return str[:len(str)-len(hex)] + hex[:12]
		}
		return str
	},
	"join": strings.Join,
}

// page is what the layout shows around every page.
type page struct {
	Title    string
	Registry string // host:port
	Mode     string
	Body     any
}

// route serves one page below Prefix; rest is the path after it.
func (s *Site) route(w http.ResponseWriter, r *http.Request, rest string) {
	ctx := r.Context()
	switch {
	case rest == "":
		data, err := s.indexData(ctx, r.URL.Query())
		s.render(w, "index", "Images", data, err)
	case rest == "-/registry":
		data, err := s.registryData(ctx)
		s.render(w, "registry", "Registry", data, err)
	case strings.HasPrefix(rest, artifactRoute):
		s.document(w, r, strings.TrimPrefix(rest, artifactRoute))
	default:
		s.imagePage(w, r, rest)
	}
}

// imagePage serves /ui/<repo>:<tag>; /ui/<repo> goes to the index
// filtered to that repository.
func (s *Site) imagePage(w http.ResponseWriter, r *http.Request, ref string) {
	name, tag := ref, ""
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	named, err := reference.WithName(name)
	if err == nil && tag != "" {
		_, err = reference.WithTag(named, tag)
	}
	if err != nil {
		s.notFound(w, "No image "+ref+": want /ui/<repository>:<tag>")
		return
	}
	if tag == "" {
		http.Redirect(w, r, Prefix+"?q="+url.QueryEscape(name), http.StatusFound)
		return
	}
	data, err := s.imageData(r.Context(), name, tag)
	if err == errNotFound {
		s.notFound(w, "No image "+name+":"+tag+" in this registry.")
		return
	}
	s.render(w, "image", name+":"+tag, data, err)
}

func (s *Site) notFound(w http.ResponseWriter, msg string) {
	w.WriteHeader(http.StatusNotFound)
	s.render(w, "error", "Not found", msg, nil)
}

// render executes a page into a buffer, so that an error still gives a
// whole page.
func (s *Site) render(w http.ResponseWriter, name, title string, body any, err error) {
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		name, title, body = "error", "Error", err.Error()
	}
	var buf bytes.Buffer
	p := page{Title: title, Registry: s.c.URL, Mode: s.c.Mode(), Body: body}
	tmpls, err := pages()
	if err == nil {
		err = tmpls[name].ExecuteTemplate(&buf, "layout", p)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
}

// indexData is the index page: the repositories matching q, one page of
// them.
type indexData struct {
	Query       string
	Repos       []*repoRows
	Matched     int // repositories matching Query
	All         int // repositories in the registry
	Page, Pages int
	Prev, Next  string
	// Local is true when every match is on this page: the filter box then
	// filters in the browser.
	Local bool
}

func (s *Site) indexData(ctx context.Context, q url.Values) (*indexData, error) {
	names, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	d := &indexData{Query: strings.TrimSpace(q.Get("q")), All: len(names), Page: 1}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
		d.Page = n
	}
	needle := strings.ToLower(d.Query)
	all, err := s.repos(ctx, names)
	if err != nil {
		return nil, err
	}
	var matched []*repoRows
	for _, rows := range all {
		if len(rows.Tags) > 0 && strings.Contains(rows.Filter, needle) {
			matched = append(matched, rows)
		}
	}
	d.Matched = len(matched)
	d.Pages = max(1, (len(matched)+perPage-1)/perPage)
	d.Page = min(d.Page, d.Pages)
	d.Repos = matched[(d.Page-1)*perPage : min(len(matched), d.Page*perPage)]
	d.Local = d.Pages == 1
	link := func(page int) string {
		v := url.Values{}
		if d.Query != "" {
			v.Set("q", d.Query)
		}
		v.Set("page", strconv.Itoa(page))
		return Prefix + "?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	return d, nil
}

// pull is one pull command with where it runs.
type pull struct{ Where, Cmd string }

// imageData is the image page of repo:tag.
type imageData struct {
	Repo, Tag   string
	Image       *Image
	Tag0        tagRow
	OtherTags   []tagRow
	Pull        []pull
	BuildLabels []Label
	Artifacts   []attached
	// ArtifactsErr says why the artifacts could not be listed.
	ArtifactsErr string
}

// errNotFound is a repository or tag the registry does not have.
var errNotFound = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "not found" }

func (s *Site) imageData(ctx context.Context, repo, tag string) (*imageData, error) {
	rows, err := s.repo(ctx, repo)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(rows.Tags, func(t tagRow) bool { return t.Name == tag })
	if i < 0 {
		return nil, errNotFound
	}
	d := &imageData{Repo: repo, Tag: tag, Tag0: rows.Tags[i]}
	named, _ := reference.WithName(repo)
	r, err := s.ns.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	if d.Image, err = s.image(ctx, r, d.Tag0.Digest); err != nil {
		return nil, err
	}
	for _, t := range rows.Tags {
		if t.Digest == d.Tag0.Digest && t.Name != tag {
			d.OtherTags = append(d.OtherTags, t)
		}
	}
	d.Pull = s.pulls(repo + ":" + tag)
	if len(d.Image.Platforms) > 0 {
		d.BuildLabels = pick(d.Image.Platforms[0].Info.Labels, buildLabels)
	}
	d.Artifacts, err = s.attachedTo(ctx, repo, d.Image)
	if err != nil {
		d.ArtifactsErr = err.Error()
	}
	return d, nil
}

// pick returns the labels named in keys, in that order.
func pick(labels []Label, keys []string) []Label {
	var out []Label
	for _, k := range keys {
		for _, l := range labels {
			if l.Key == k {
				out = append(out, l)
			}
		}
	}
	return out
}

// pulls are the commands that pull ref on the build host and on targets
// (at the address the target payloads configure).
func (s *Site) pulls(ref string) []pull {
	c := s.c
	host := c.URL + "/" + ref
	podman := "podman pull --tls-verify=false " + host
	if c.Secure {
		podman = "podman pull --cert-dir " + c.PKIDir() + " " + host
		if c.Auth {
			podman = "podman pull --cert-dir " + c.PKIDir() + " --creds " + c.Username + " " + host
		}
	}
	target := c.TargetURL + "/" + ref
	return []pull{
		{"build host (podman)", podman},
		{"build host (docker)", "docker pull " + host},
		{"target (podman)", "podman pull " + target},
		{"target (docker)", "docker pull " + target},
	}
}
