package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

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

Deletes exactly one tag; other tags of the same image stay.
Then run '%[1]s gc --delete-untagged' to reclaim the disk space.

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
	fmt.Fprintf(o.Out, "Other tags keep the manifest; when none is left, free its space with:\n  %s gc --delete-untagged\n", o.Script)
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
