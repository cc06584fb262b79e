package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The blob and manifest requests every writer of this tool makes (push,
// signing, promote and bundle import) in the fewest round trips the
// distribution API allows: HEAD to ask, POST (with a mount) and one
// monolithic PUT to upload. client is an authenticated client of repo
// (Target.Client); its transport applies the retry policy to requests
// without a body.

// RawManifest is a manifest to put as it is (remote.Taggable).
type RawManifest struct {
	Data []byte
	Type types.MediaType
}

func (m RawManifest) RawManifest() ([]byte, error)        { return m.Data, nil }
func (m RawManifest) MediaType() (types.MediaType, error) { return m.Type, nil }

// BlobExists asks whether repo holds blob d (HEAD).
func BlobExists(ctx context.Context, client *http.Client, repo name.Repository, d v1.Hash) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, repoURL(repo, "/blobs/"+d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("checking blob %s: %w", d, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("checking blob %s: %w", d, transport.CheckError(resp, http.StatusOK))
}

// StartUpload opens an upload session of repo (POST), asking to mount
// blob d from the repository from when it is not "". It returns the
// session's absolute location, or mounted when the registry mounted the
// blob (or found it in repo). A mount the registry refuses with a client
// error (some do when from is repo itself) is asked again without.
func StartUpload(ctx context.Context, client *http.Client, repo name.Repository, d v1.Hash, from string) (loc string, mounted bool, err error) {
	u := repoURL(repo, "/blobs/uploads/")
	if from != "" {
		u += "?" + url.Values{"mount": {d.String()}, "from": {from}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusCreated, http.StatusAccepted); err != nil {
		if from != "" && resp.StatusCode < http.StatusInternalServerError {
			return StartUpload(ctx, client, repo, d, "")
		}
		return "", false, err
	}
	if resp.StatusCode == http.StatusCreated {
		return "", true, nil
	}
	raw := resp.Header.Get("Location")
	if raw == "" {
		return "", false, errors.New("the registry answered the upload without a Location")
	}
	// Registries answer a path, or a URL with query parameters of their own.
	abs, err := resp.Request.URL.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("upload location %q: %w", raw, err)
	}
	return abs.String(), false, nil
}

// FinishUpload completes the session at loc with the whole blob d (size
// bytes from body) in one monolithic PUT.
func FinishUpload(ctx context.Context, client *http.Client, loc string, d v1.Hash, size int64, body io.Reader) error {
	u, err := url.Parse(loc)
	if err != nil {
		return fmt.Errorf("upload location %q: %w", loc, err)
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return transport.CheckError(resp, http.StatusCreated)
}

// repoURL is the address of path below repo's /v2/<name>.
func repoURL(repo name.Repository, path string) string {
	return fmt.Sprintf("%s://%s/v2/%s%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), path)
}
