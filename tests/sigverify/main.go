// Command sigverify is a test-only verifier: it decides, with upstream
// containers/image (go.podman.io/image/v5, the library podman, skopeo and
// CRI-O use on targets), whether a target that holds the files of a target
// payload would pull an image. It is its own Go module so that the tool's
// go.mod does not grow; the end-to-end tests build it (tests/sigverify_test.go).
//
//	sigverify --root DIR docker://HOST/REPO:TAG...
//
// DIR is a target's root file system as `ocireg-tool target oci` (and the
// policy merge) left it. Everything is read from there, as the target reads
// it: etc/containers/policy.json (keyPath and keyPaths taken below DIR),
// etc/containers/registries.d (use-sigstore-attachments),
// etc/containers/registries.conf.d (insecure registries),
// etc/containers/certs.d (the CA) and etc/containers/auth.json (credentials).
//
// Each reference is checked as podman checks a pull from a manifest list:
// the manifest the tag names, then, when it is an index, every instance it
// lists (PolicyContext.IsRunningImageAllowed on each). One JSON object per
// manifest goes to standard output. Exit status: 0 every manifest allowed,
// 1 one refused, 2 the check could not run.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
)

// Result is the verdict on one manifest.
type Result struct {
	Ref     string `json:"ref"`
	Digest  string `json:"digest"`
	Index   bool   `json:"index,omitempty"`
	Allowed bool   `json:"allowed"`
	Error   string `json:"error,omitempty"`
}

func main() {
	root := flag.String("root", "", "the target's root file system (the payload's install directory)")
	flag.Parse()
	if *root == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: sigverify --root DIR docker://HOST/REPO:TAG...")
		os.Exit(2)
	}
	results, err := run(context.Background(), *root, flag.Args())
	enc := json.NewEncoder(os.Stdout)
	refused := false
	for _, r := range results {
		enc.Encode(r)
		refused = refused || !r.Allowed
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigverify:", err)
		os.Exit(2)
	}
	if refused {
		os.Exit(1)
	}
}

func run(ctx context.Context, root string, refs []string) ([]Result, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	policy, err := loadPolicy(root)
	if err != nil {
		return nil, err
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()
	cache, err := os.MkdirTemp("", "sigverify-cache-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cache)
	sys := &types.SystemContext{
		// /etc/containers/{registries.d,registries.conf,registries.conf.d,certs.d} below root.
		RootForImplicitAbsolutePaths: root,
		BlobInfoCacheDir:             cache,
	}
	if auth := filepath.Join(root, "etc/containers/auth.json"); fileExists(auth) {
		sys.AuthFilePath = auth
	} else {
		// Not the invoking user's credentials: only what the target has.
		sys.AuthFilePath = filepath.Join(cache, "no-auth.json")
	}
	var results []Result
	for _, name := range refs {
		rs, err := check(ctx, sys, pc, name)
		results = append(results, rs...)
		if err != nil {
			return results, fmt.Errorf("%s: %w", name, err)
		}
	}
	return results, nil
}

// check evaluates the policy on the manifest name points at and, for an
// index, on every instance.
func check(ctx context.Context, sys *types.SystemContext, pc *signature.PolicyContext, name string) ([]Result, error) {
	ref, err := alltransports.ParseImageName(name)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	top := image.UnparsedInstance(src, nil)
	blob, mime, err := top.Manifest(ctx)
	if err != nil {
		return nil, err
	}
	dgst, err := manifest.Digest(blob)
	if err != nil {
		return nil, err
	}
	multi := manifest.MIMETypeIsMultiImage(mime)
	results := []Result{verdict(ctx, pc, top, name, dgst, multi)}
	if !multi {
		return results, nil
	}
	list, err := manifest.ListFromBlob(blob, mime)
	if err != nil {
		return results, err
	}
	for _, d := range list.Instances() {
		results = append(results, verdict(ctx, pc, image.UnparsedInstance(src, &d), name, d, false))
	}
	return results, nil
}

func verdict(ctx context.Context, pc *signature.PolicyContext, img types.UnparsedImage, name string, d digest.Digest, index bool) Result {
	r := Result{Ref: name, Digest: d.String(), Index: index}
	allowed, err := pc.IsRunningImageAllowed(ctx, img)
	r.Allowed = allowed && err == nil
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// loadPolicy reads root's policy.json with every key path taken below root,
// as if the verifier ran on the target.
func loadPolicy(root string) (*signature.Policy, error) {
	path := filepath.Join(root, "etc/containers/policy.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rebase(doc, root)
	data, err = json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	p, err := signature.NewPolicyFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// rebase prefixes every absolute keyPath and keyPaths entry with root.
func rebase(v any, root string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			switch s := e.(type) {
			case string:
				if k == "keyPath" && strings.HasPrefix(s, "/") {
					v[k] = filepath.Join(root, s)
				}
			case []any:
				if k == "keyPaths" {
					for i, p := range s {
						if p, ok := p.(string); ok && strings.HasPrefix(p, "/") {
							s[i] = filepath.Join(root, p)
						}
					}
				}
			}
			rebase(e, root)
		}
	case []any:
		for _, e := range v {
			rebase(e, root)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
