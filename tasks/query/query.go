// Package query answers the read-only commands: catalog, list, tags (from
// the registry through the Target) and info (from the configuration).
package query

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
	"github.com/ocireg-tool/ocireg-tool/tasks/retention"
	"github.com/ocireg-tool/ocireg-tool/tasks/runstate"
)

// Catalog returns every repository of the registry, all pages.
func Catalog(ctx context.Context, t *registry.Target) ([]string, error) {
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	return t.Catalog(ctx)
}

// Repo is one repository and its tags.
type Repo struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
	// Artifacts are the referrers of its images (Tags with
	// WithArtifacts).
	Artifacts []ImageArtifacts `json:"artifacts,omitempty"`
}

// listParallel is how many repositories List asks for at once.
const listParallel = 8

// List returns every repository with its tags, in catalog order. The tag
// lists are asked for listParallel at a time, through one transport
// (Target.Shared) where the registry allows.
func List(ctx context.Context, t *registry.Target) ([]Repo, error) {
	names, err := Catalog(ctx, t)
	if err != nil {
		return nil, err
	}
	refs := make([]name.Repository, len(names))
	for i, n := range names {
		if refs[i], err = t.Repo(n); err != nil {
			return nil, fmt.Errorf("catalog entry %q: %w", n, err)
		}
	}
	shared, err := t.Shared(ctx)
	if err != nil {
		return nil, err
	}
	var extra []remote.Option
	if shared != nil {
		extra = []remote.Option{shared}
	}
	repos := make([]Repo, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listParallel)
	for i, r := range refs {
		g.Go(func() error {
			tags, err := t.Tags(gctx, r, extra...)
			if errors.Is(err, registry.ErrImageNotFound) {
				tags = []string{} // deleted between the two requests
			} else if err != nil {
				return err
			}
			repos[i] = Repo{Name: names[i], Tags: tags}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return repos, nil
}

// ImageNotFoundError says `tags` was asked about an unknown image.
type ImageNotFoundError struct{ Repo, Script string }

func (e *ImageNotFoundError) Error() string {
	return fmt.Sprintf("Image not found: %s (see `%s list`)", e.Repo, e.Script)
}

// Tags returns the tags of image (the namespace is added when the name has
// no '/'); withArtifacts adds what is attached to each platform image.
func Tags(ctx context.Context, t *registry.Target, image string, withArtifacts bool) (*Repo, error) {
	r, err := t.Repo(image)
	if err != nil {
		return nil, fmt.Errorf("invalid image name %q: %w", image, err)
	}
	if err := t.Ping(ctx); err != nil {
		return nil, err
	}
	tags, err := t.Tags(ctx, r)
	if errors.Is(err, registry.ErrImageNotFound) {
		return nil, &ImageNotFoundError{Repo: r.RepositoryStr(), Script: t.Script}
	}
	if err != nil {
		return nil, err
	}
	res := &Repo{Name: r.RepositoryStr(), Tags: tags}
	if withArtifacts {
		if res.Artifacts, err = Artifacts(ctx, t, r, tags); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// InfoData is the configuration `info` shows. Username and PasswordFile
// are the local registry's user (CONTAINER_REGISTRY_USERNAME) and password
// file, when auth is on; PushAuth is where push and import take a
// destination's credentials from (CONTAINER_REGISTRY_AUTH_MODE).
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
	PushAuth     string   `json:"push_auth"`
	// Retention is the retention policy of prune in one line, and
	// RetentionOnPush whether push prunes the images it pushed.
	Retention       string `json:"retention"`
	RetentionOnPush bool   `json:"retention_on_push"`
	// LastPrune is the record of the last prune of the storage (nil: none;
	// LastPruneErr: it did not read).
	LastPrune    *runstate.PruneRecord `json:"last_prune,omitempty"`
	LastPruneErr string                `json:"last_prune_error,omitempty"`
	// Sources says, for every baked setting, its value and where it came
	// from (the helper script, the environment or the default).
	Sources []InfoSource `json:"sources"`
}

// InfoSource is one setting's value and origin.
type InfoSource struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	From  string `json:"from"`
}

// Info returns the effective configuration: the helper's baked values as
// overridden by the environment. It does not need the registry.
func Info(c *config.Config) *InfoData {
	d := &InfoData{
		URL:         c.BaseURL(),
		Namespace:   c.Namespace,
		Storage:     c.Storage,
		Config:      c.RegistryConfig(),
		DeployDirs:  c.DeployDirs(),
		TagStrategy: strings.Join(c.TagStrategy, " "),
		TargetArch:  c.TargetArch,
		Mode:        c.Mode(),
		Secure:      c.Secure,
		Auth:        c.Auth,
		PushAuth:    c.AuthMode,

		Retention:       retention.FromConfig(c).String(),
		RetentionOnPush: c.Retention.OnPush,
	}
	if rec, err := runstate.ReadPruneRecord(c); err != nil {
		d.LastPruneErr = err.Error()
	} else {
		d.LastPrune = rec
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
	for _, s := range config.Settings {
		if s.Bake == nil {
			continue
		}
		v := c.Get(s.Name)
		d.Sources = append(d.Sources, InfoSource{Name: s.Name, Value: s.Bake(c), From: v.From})
	}
	return d
}
