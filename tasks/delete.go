package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ocireg-tool/ocireg-tool/generator"
)

// manifestAccept lists the manifest media types a HEAD must accept so that
// the registry answers for any kind of image.
var manifestAccept = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// DeleteUsage is the usage of `delete`, with examples.
func DeleteUsage(script, namespace string) string {
	return fmt.Sprintf(`Usage: %[1]s delete <image>:<tag>

Deletes exactly one tag; other tags of the same image stay. When no other
tag uses the image any more, its manifests go too; then run
'%[1]s gc' to reclaim the disk space.

Examples:
  %[1]s delete container-base:20260112-143022
  %[1]s delete %[2]s/container-base:latest`, script, namespace)
}

// SplitImageTag splits "name:tag" at the colon after the last '/' (a
// registry port is not a tag). ok is false when there is no tag.
func SplitImageTag(ref string) (image, tag string, ok bool) {
	slash := strings.LastIndexByte(ref, '/')
	colon := strings.LastIndexByte(ref, ':')
	if colon <= slash || colon == len(ref)-1 {
		return ref, "", false
	}
	return ref[:colon], ref[colon+1:], true
}

// DeleteOptions are the options of Delete.
type DeleteOptions struct {
	Out    io.Writer
	Script string
}

// Delete removes exactly the tag of ref ("image:tag"; the namespace is added
// when image has no '/'). It uses the registry's tag deletion
// (DELETE /v2/<name>/manifests/<tag>), which unlinks only that tag: other
// tags on the same manifest survive. A registry that cannot delete a tag
// alone is refused rather than deleting the manifest by digest, which would
// take every tag on it.
func Delete(ctx context.Context, c *generator.Config, ref string, o DeleteOptions) error {
	image, tag, ok := SplitImageTag(ref)
	if ref == "" || !ok || image == "" {
		msg := "Tag required: use <image>:<tag>"
		if ref != "" {
			msg = fmt.Sprintf("Tag required: %q has no tag; use <image>:<tag>", ref)
		}
		return &UsageError{Msg: msg, Usage: DeleteUsage(o.Script, c.Namespace)}
	}
	repo := RepoName(c, image)
	if _, err := name.NewTag(repo + ":" + tag); err != nil {
		return &UsageError{Msg: fmt.Sprintf("invalid image reference %q: %v", ref, err), Usage: DeleteUsage(o.Script, c.Namespace)}
	}
	cl, err := connect(ctx, c, o.Script)
	if err != nil {
		return err
	}
	u := cl.Base + "/v2/" + repo + "/manifests/" + tag
	resp, err := cl.Do(ctx, http.MethodHead, u, http.Header{"Accept": manifestAccept})
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return fmt.Errorf("Tag not found: %s:%s (see `%s tags %s`)", repo, tag, o.Script, image)
	default:
		return &StatusError{Method: "HEAD", URL: u, Code: resp.StatusCode, Status: resp.Status}
	}
	digest := resp.Header.Get("Docker-Content-Digest")

	fmt.Fprintf(o.Out, "Deleting %s:%s", repo, tag)
	if digest != "" {
		fmt.Fprintf(o.Out, " (%s)", digest)
	}
	fmt.Fprintln(o.Out, "...")
	resp, err = cl.Do(ctx, http.MethodDelete, u, nil)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("Tag not found: %s:%s", repo, tag)
	case resp.StatusCode == http.StatusMethodNotAllowed || errorCode(body) == "UNSUPPORTED" || resp.StatusCode == http.StatusBadRequest:
		return fmt.Errorf("the registry at %s cannot delete the tag %s:%s alone (%s); refusing to delete its manifest by digest, which would remove every tag on it. Enable storage.delete in %s",
			cl.Base, repo, tag, resp.Status, c.RegistryConfig())
	default:
		return &StatusError{Method: "DELETE", URL: u, Code: resp.StatusCode, Status: resp.Status, Body: string(body)}
	}
	fmt.Fprintf(o.Out, "Deleted successfully: %s:%s\n", repo, tag)
	if digest != "" {
		removed, err := pruneManifests(ctx, c, repo, digest)
		if err != nil {
			fmt.Fprintf(o.Out, "Warning: the tag is gone but its manifests stay (%v); '%s gc --delete-untagged' removes them\n", err, o.Script)
		}
		for _, d := range removed {
			fmt.Fprintf(o.Out, "  removed manifest %s (no other tag uses it)\n", d)
		}
	}
	fmt.Fprintf(o.Out, "Free the disk space with:\n  %s gc\n", o.Script)
	return nil
}

// pruneManifests deletes, by digest, the manifest a deleted tag pointed at
// and the manifests it lists, as long as no remaining tag of the
// repository reaches them (directly or through an index). Other tags'
// images are never touched. It returns the digests it removed.
func pruneManifests(ctx context.Context, c *generator.Config, repo, digest string) ([]string, error) {
	opts, err := LocalOptions(ctx, c)
	if err != nil {
		return nil, err
	}
	var nameOpts []name.Option
	if !c.Secure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.NewRepository(c.URL+"/"+repo, nameOpts...)
	if err != nil {
		return nil, err
	}
	tags, err := remote.List(r, opts...)
	if err != nil {
		var te *transport.Error
		if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
			return nil, fmt.Errorf("listing the remaining tags: %w", err)
		}
	}
	kept := map[string]bool{}
	for _, tag := range tags {
		if err := reach(r.Tag(tag), r, opts, kept); err != nil {
			return nil, fmt.Errorf("reading %s:%s: %w", repo, tag, err)
		}
	}
	if kept[digest] {
		return nil, nil
	}
	gone := map[string]bool{}
	if err := reach(r.Digest(digest), r, opts, gone); err != nil {
		return nil, fmt.Errorf("reading %s@%s: %w", repo, digest, err)
	}
	// The deleted tag's manifest first, then what it listed, so no index
	// ever points at a missing child.
	order := []string{digest}
	for d := range gone {
		if d != digest {
			order = append(order, d)
		}
	}
	var removed []string
	for _, d := range order {
		if kept[d] {
			continue
		}
		if err := remote.Delete(r.Digest(d), opts...); err != nil {
			return removed, fmt.Errorf("deleting %s@%s: %w", repo, d, err)
		}
		removed = append(removed, d)
	}
	return removed, nil
}

// reach adds the digest of ref's manifest, and of every manifest an index
// lists (recursively), to seen. Children missing from the registry (an
// index of platforms pushed elsewhere) are skipped.
func reach(ref name.Reference, repo name.Repository, opts []remote.Option, seen map[string]bool) error {
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return err
	}
	d := desc.Digest.String()
	if seen[d] {
		return nil
	}
	seen[d] = true
	if !desc.MediaType.IsIndex() {
		return nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return err
	}
	for _, m := range idx.Manifests {
		if !m.MediaType.IsIndex() && !m.MediaType.IsImage() {
			continue
		}
		err := reach(repo.Digest(m.Digest.String()), repo, opts, seen)
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errorCode returns the first code of a registry error body, or "".
func errorCode(body []byte) string {
	var v struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &v) != nil || len(v.Errors) == 0 {
		return ""
	}
	return v.Errors[0].Code
}
