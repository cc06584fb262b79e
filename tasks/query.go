package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// maxPages bounds pagination so a misbehaving server cannot loop forever.
const maxPages = 100000

// Client talks the registry HTTP API to the local registry with its CA and
// credentials. It follows pagination (Link headers).
type Client struct {
	Base string // scheme://host:port
	HTTP *http.Client
	User string
	Pass string
}

// NewClient returns a Client for the local registry of c.
func NewClient(c *generator.Config) (*Client, error) {
	t, err := LocalTransport(c)
	if err != nil {
		return nil, err
	}
	cl := &Client{Base: BaseURL(c), HTTP: &http.Client{Transport: t}}
	if c.Auth {
		pw, err := generator.ReadPassword(c)
		if err != nil {
			return nil, err
		}
		cl.User, cl.Pass = c.Username, pw
	}
	return cl, nil
}

// StatusError is an unexpected HTTP answer of the registry.
type StatusError struct {
	Method, URL string
	Code        int
	Status      string
	Body        string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Method, e.URL, e.Status)
	if b := strings.TrimSpace(e.Body); b != "" {
		if len(b) > 300 {
			b = b[:300] + "..."
		}
		msg += ": " + b
	}
	return msg
}

// Do sends one request with the client's credentials.
func (cl *Client) Do(ctx context.Context, method, rawURL string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if cl.User != "" {
		req.SetBasicAuth(cl.User, cl.Pass)
	}
	return cl.HTTP.Do(req)
}

var linkNextRe = regexp.MustCompile(`<([^>]*)>\s*;\s*rel="?next"?`)

// nextLink returns the target of a Link header's rel="next", resolved
// against the URL of the page, or "" when there is none.
func nextLink(page *url.URL, link []string) (string, error) {
	for _, l := range link {
		m := linkNextRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		u, err := page.Parse(m[1])
		if err != nil {
			return "", fmt.Errorf("invalid Link header %q: %w", l, err)
		}
		return u.String(), nil
	}
	return "", nil
}

// GetPaged fetches path and every page its Link headers point to, calling
// page with each body. A 404 on the first page is returned as a
// *StatusError with Code 404.
func (cl *Client) GetPaged(ctx context.Context, path string, page func(body []byte) error) error {
	next := cl.Base + path
	seen := map[string]bool{}
	for n := 0; next != ""; n++ {
		if n >= maxPages || seen[next] {
			return fmt.Errorf("GET %s: pagination does not end (page %d)", next, n)
		}
		seen[next] = true
		resp, err := cl.Do(ctx, http.MethodGet, next, nil)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", next, err)
		}
		if resp.StatusCode != http.StatusOK {
			return &StatusError{Method: "GET", URL: next, Code: resp.StatusCode, Status: resp.Status, Body: string(body)}
		}
		if err := page(body); err != nil {
			return fmt.Errorf("GET %s: %w", next, err)
		}
		u, _ := url.Parse(next)
		if next, err = nextLink(u, resp.Header.Values("Link")); err != nil {
			return err
		}
	}
	return nil
}

// Repositories returns every repository of the catalog, all pages.
func (cl *Client) Repositories(ctx context.Context) ([]string, error) {
	repos := []string{}
	err := cl.GetPaged(ctx, "/v2/_catalog", func(body []byte) error {
		var v struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("decoding catalog: %w", err)
		}
		repos = append(repos, v.Repositories...)
		return nil
	})
	return repos, err
}

// ErrImageNotFound is returned for a repository the registry does not know.
var ErrImageNotFound = errors.New("image not found")

// Tags returns every tag of repo, all pages; ErrImageNotFound when the
// repository does not exist.
func (cl *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	tags := []string{}
	err := cl.GetPaged(ctx, "/v2/"+repo+"/tags/list", func(body []byte) error {
		var v struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("decoding tag list: %w", err)
		}
		tags = append(tags, v.Tags...)
		return nil
	})
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w", repo, ErrImageNotFound)
	}
	return tags, err
}

// QueryOptions are the output options of the query commands.
type QueryOptions struct {
	Out    io.Writer
	JSON   bool
	Script string // names the helper in hints
}

// connect checks that the registry answers and returns a client for it.
func connect(ctx context.Context, c *generator.Config, script string) (*Client, error) {
	if err := Ping(ctx, c, script); err != nil {
		return nil, err
	}
	return NewClient(c)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Catalog prints the registry's /v2/_catalog, every page merged into one
// {"repositories": [...]} object, pretty-printed.
func Catalog(ctx context.Context, c *generator.Config, o QueryOptions) error {
	cl, err := connect(ctx, c, o.Script)
	if err != nil {
		return err
	}
	repos, err := cl.Repositories(ctx)
	if err != nil {
		return err
	}
	return writeJSON(o.Out, map[string][]string{"repositories": repos})
}

// Repo is one repository and its tags.
type Repo struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// List prints every repository with its tags ("(none)" when it has none).
func List(ctx context.Context, c *generator.Config, o QueryOptions) error {
	cl, err := connect(ctx, c, o.Script)
	if err != nil {
		return err
	}
	names, err := cl.Repositories(ctx)
	if err != nil {
		return err
	}
	repos := make([]Repo, 0, len(names))
	for _, n := range names {
		tags, err := cl.Tags(ctx, n)
		if errors.Is(err, ErrImageNotFound) {
			tags = []string{} // deleted between the two requests
		} else if err != nil {
			return err
		}
		repos = append(repos, Repo{Name: n, Tags: tags})
	}
	if o.JSON {
		return writeJSON(o.Out, repos)
	}
	fmt.Fprintf(o.Out, "Images in %s:\n", c.URL)
	if len(repos) == 0 {
		fmt.Fprintf(o.Out, "  (none)\n")
	}
	for _, r := range repos {
		tags := strings.Join(r.Tags, " ")
		if tags == "" {
			tags = "(none)"
		}
		fmt.Fprintf(o.Out, "  %s: %s\n", r.Name, tags)
	}
	return nil
}

// Tags prints the tags of image (the namespace is added when the name has
// no '/'). An unknown image prints "Image not found" and fails.
func Tags(ctx context.Context, c *generator.Config, image string, o QueryOptions) error {
	repo := RepoName(c, image)
	if _, err := name.NewRepository(repo); err != nil {
		return fmt.Errorf("invalid image name %q: %v", image, err)
	}
	cl, err := connect(ctx, c, o.Script)
	if err != nil {
		return err
	}
	tags, err := cl.Tags(ctx, repo)
	if errors.Is(err, ErrImageNotFound) {
		return fmt.Errorf("Image not found: %s (see `%s list`)", repo, o.Script)
	}
	if err != nil {
		return err
	}
	if o.JSON {
		return writeJSON(o.Out, Repo{Name: repo, Tags: tags})
	}
	fmt.Fprintf(o.Out, "Tags for %s:\n", repo)
	if len(tags) == 0 {
		fmt.Fprintf(o.Out, "  (none)\n")
	}
	for _, t := range tags {
		fmt.Fprintf(o.Out, "  %s\n", t)
	}
	return nil
}

// InfoData is the configuration `info` shows.
type InfoData struct {
	URL          string   `json:"url"`
	Namespace    string   `json:"namespace"`
	Storage      string   `json:"storage"`
	Config       string   `json:"config"`
	DeployDirs   []string `json:"deploy_dirs"`
	TagStrategy  string   `json:"tag_strategy"`
	TargetArch   string   `json:"target_arch"`
	Mode         string   `json:"mode"`
	Secure       bool     `json:"secure"`
	Auth         bool     `json:"auth"`
	PKIDir       string   `json:"pki_dir,omitempty"`
	CACert       string   `json:"ca_cert,omitempty"`
	Username     string   `json:"username,omitempty"`
	PasswordFile string   `json:"password_file,omitempty"`
}

// Info prints the configuration baked into the helper (as overridden by the
// environment). It does not need the registry.
func Info(c *generator.Config, o QueryOptions) error {
	d := InfoData{
		URL:         BaseURL(c),
		Namespace:   c.Namespace,
		Storage:     c.Storage,
		Config:      c.RegistryConfig(),
		DeployDirs:  c.DeployDirs(),
		TagStrategy: strings.Join(c.TagStrategy, " "),
		TargetArch:  c.TargetArch,
		Mode:        c.Mode(),
		Secure:      c.Secure,
		Auth:        c.Auth,
	}
	if d.DeployDirs == nil {
		d.DeployDirs = []string{}
	}
	if c.Secure {
		d.PKIDir, d.CACert = c.PKIDir(), c.CACert()
	}
	if c.Auth {
		d.Username, d.PasswordFile = c.Username, c.PasswordFile()
	}
	if o.JSON {
		return writeJSON(o.Out, d)
	}
	or := func(s string) string {
		if s == "" {
			return "(not set)"
		}
		return s
	}
	w := o.Out
	fmt.Fprintf(w, "Container registry configuration:\n")
	fmt.Fprintf(w, "  URL:          %s\n", d.URL)
	fmt.Fprintf(w, "  Namespace:    %s\n", d.Namespace)
	fmt.Fprintf(w, "  Storage:      %s\n", d.Storage)
	fmt.Fprintf(w, "  Config:       %s\n", d.Config)
	fmt.Fprintf(w, "  Deploy dirs:  %s\n", or(strings.Join(d.DeployDirs, " ")))
	fmt.Fprintf(w, "  Tag strategy: %s\n", d.TagStrategy)
	fmt.Fprintf(w, "  Target arch:  %s\n", or(d.TargetArch))
	fmt.Fprintf(w, "  Mode:         %s\n", d.Mode)
	if c.Secure {
		fmt.Fprintf(w, "  PKI dir:      %s\n", d.PKIDir)
		fmt.Fprintf(w, "  CA cert:      %s\n", d.CACert)
	}
	if c.Auth {
		fmt.Fprintf(w, "  Username:     %s\n", d.Username)
		fmt.Fprintf(w, "  Password:     %s\n", d.PasswordFile)
	}
	return nil
}
