package transfer

import (
	"context"
	"fmt"
	"strings"

	"github.com/ocireg-tool/ocireg-tool/tasks"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/imageref"
	"github.com/ocireg-tool/ocireg-tool/tasks/registry"
)

// PromoteUsage is the promote command's usage, shown with usage errors.
const PromoteUsage = `Usage: container-registry.sh promote <image>[:tag]... --to <registry>[/<namespace>] [options]

  promote container-base:v1.2 --to registry.example.com/prod
  promote container-base --all-tags --to registry.example.com/prod --authfile ~/.docker/config.json
  promote app --tag-pattern 'v1.*' --to harbor.lan:8443/yocto --ca-file harbor-ca.crt
  promote app:20260112-143022 --tag 1.2.0 --to registry.example.com/prod
  promote app --to 127.0.0.1:5001/test --dest-insecure`

// PromoteOptions say what to promote where.
type PromoteOptions struct {
	Selection
	// Namespace is the destination namespace ("" keeps the local
	// repository path): image "app" goes to <Namespace>/app.
	Namespace string
	// Rename are the destination tags of the one tag selected.
	Rename []string
	Events events.Sink
}

// PromoteResult is what Promote copied.
type PromoteResult struct {
	// Destination is the registry (host[:port]) and Namespace its
	// namespace.
	Destination string `json:"destination"`
	Namespace   string `json:"namespace"`
	// ReferrersAPI says how referrers were recorded at the destination:
	// its referrers API, else the referrers tag schema (sha256-<hex>).
	ReferrersAPI bool          `json:"referrers_api"`
	Images       []ImageResult `json:"images"`
	// BytesSent counts every request body sent: blobs and manifests.
	BytesSent int64 `json:"bytes_sent"`
}

// ParseDestination splits --to: host[:port][/namespace].
func ParseDestination(to string) (host, namespace string, err error) {
	if strings.Contains(to, "://") {
		return "", "", &tasks.UsageError{Msg: fmt.Sprintf("--to %q: give host[:port][/namespace], without a scheme (--dest-insecure allows plain HTTP)", to), Usage: PromoteUsage}
	}
	host, namespace, _ = strings.Cut(strings.TrimSuffix(to, "/"), "/")
	if host == "" {
		return "", "", &tasks.UsageError{Msg: "--to: give the destination registry, host[:port][/namespace]", Usage: PromoteUsage}
	}
	if namespace != "" {
		if err := imageref.ValidateRepository(namespace); err != nil {
			return "", "", &tasks.UsageError{Msg: fmt.Sprintf("--to %q: namespace: %v", to, err), Usage: PromoteUsage}
		}
	}
	return host, namespace, nil
}

// Promote copies the selected images of src, with every platform and
// every referrer, to dst (connected: see registry.ConnectRemote). Only
// what dst lacks is sent; a second run sends nothing.
func Promote(ctx context.Context, src, dst *registry.Target, o PromoteOptions) (*PromoteResult, error) {
	for _, t := range o.Rename {
		if err := imageref.ValidateTag(t); err != nil {
			return nil, &tasks.UsageError{Msg: "--tag: " + err.Error(), Usage: PromoteUsage}
		}
	}
	if err := src.Ping(ctx); err != nil {
		return nil, err
	}
	imgs, err := walkRegistry(ctx, src, o.Selection, PromoteUsage)
	if err != nil {
		return nil, err
	}
	if len(o.Rename) > 0 {
		n := 0
		for _, img := range imgs {
			for _, t := range img.Tags {
				if !t.Attached {
					n++
				}
			}
		}
		if n != 1 {
			return nil, &tasks.UsageError{Msg: fmt.Sprintf("--tag renames one tag; the selection has %d", n), Usage: PromoteUsage}
		}
	}
	d := newDest(dst, o.Events)
	res := &PromoteResult{Destination: dst.Registry.RegistryStr(), Namespace: o.Namespace}
	var jobs []*job
	for _, img := range imgs {
		repo, err := dst.Repo(destPath(img, o.Namespace))
		if err != nil {
			return nil, fmt.Errorf("destination repository of %s: %w", img.Repo, err)
		}
		open, err := registryBlobs(ctx, src, img.Repo, false)
		if err != nil {
			return nil, err
		}
		if dst.Registry.RegistryStr() == src.Registry.RegistryStr() {
			// Another namespace of the same registry: every blob mounts
			// from the source repository.
			from, err := dst.Repo(img.Repo)
			if err != nil {
				return nil, err
			}
			for _, b := range img.Blobs {
				d.mountFrom[b.Digest] = from
			}
		}
		j, err := d.newJob(ctx, img, repo, destTags(img, o.Rename), open)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	if res.Images, err = d.write(ctx, jobs); err != nil {
		return res, err
	}
	d.finish()
	res.BytesSent = d.sent.Load()
	res.ReferrersAPI = d.api.Load()
	return res, nil
}

// destPath is the repository path of img at a destination with namespace
// ns: <ns>/<name>, or the local path when ns is empty.
func destPath(img *Image, ns string) string {
	if ns == "" {
		return img.Repo
	}
	return ns + "/" + img.Name[strings.LastIndex(img.Name, "/")+1:]
}
