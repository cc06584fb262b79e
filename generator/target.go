package generator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/buildinfo"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// Target payload kinds, as `ocireg-tool target <kind>` spells them.
const (
	TargetDocker = "docker"
	TargetOCI    = "oci"
	TargetCA     = "ca"
	// TargetPolicy is the registry's signature requirement merged into the
	// policy.json already in the install root (signing on only): the
	// container-host-config bbappend's payload.
	TargetPolicy = "policy"
)

// TargetFile is one file of a target payload, relative to the install root.
type TargetFile struct {
	Path string
	Data []byte
	Mode os.FileMode
	// DirMode, when set, is forced on the file's parent directory.
	DirMode os.FileMode
}

// TargetOption changes what a target payload holds.
type TargetOption func(*targetOptions)

type targetOptions struct {
	skipCA, skipPolicy bool
	// policyBase is the install root's policy.json (nil: none).
	policyBase []byte
}

// SkipCA leaves the CA certificate out of the docker and oci payloads: the
// container-registry-ca package ships it, and two packages must not ship
// the same file.
func SkipCA() TargetOption { return func(o *targetOptions) { o.skipCA = true } }

// SkipPolicy leaves policy.json out of the oci payload: on a target image
// container-host-config ships that file, and the layer merges the
// registry's requirement into it there (kind TargetPolicy).
func SkipPolicy() TargetOption { return func(o *targetOptions) { o.skipPolicy = true } }

// PolicyBase is the policy.json the oci and policy payloads merge the
// registry's requirement into (InstallTarget reads it from the install
// root); without it they start from containers/image's default.
func PolicyBase(data []byte) TargetOption { return func(o *targetOptions) { o.policyBase = data } }

// TargetFiles computes the payload of one target package. Nothing is written.
func TargetFiles(c *config.Config, kind string, opts ...TargetOption) ([]TargetFile, error) {
	var o targetOptions
	for _, opt := range opts {
		opt(&o)
	}
	switch kind {
	case TargetDocker:
		return dockerFiles(c, o)
	case TargetOCI:
		return ociFiles(c, o)
	case TargetCA:
		return caFiles(c)
	case TargetPolicy:
		if !c.Sign {
			return nil, errors.New("target policy: signing is off (CONTAINER_REGISTRY_SIGN=1 turns it on)")
		}
		f, err := policyFile(c, o.policyBase)
		if err != nil {
			return nil, err
		}
		return []TargetFile{f}, nil
	}
	return nil, fmt.Errorf("unknown target kind %q (valid: docker, oci, ca, policy)", kind)
}

// InstallTarget writes the payload of kind under dest (a recipe's ${D}).
// The policy.json of the oci and policy payloads is the one already under
// dest with the registry's requirement merged in.
func InstallTarget(c *config.Config, kind, dest string, opts ...TargetOption) ([]string, error) {
	if kind == TargetPolicy || (kind == TargetOCI && c.Sign) {
		base, err := readPolicyBase(dest)
		if err != nil {
			return nil, err
		}
		opts = append(opts, PolicyBase(base))
	}
	files, err := TargetFiles(c, kind, opts...)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dest, f.Path)
		if f.DirMode != 0 {
			if err := os.MkdirAll(filepath.Dir(path), f.DirMode); err != nil {
				return written, err
			}
			if err := os.Chmod(filepath.Dir(path), f.DirMode); err != nil {
				return written, err
			}
		}
		if _, err := safefile.WriteAtomic(path, f.Data, f.Mode); err != nil {
			return written, err
		}
		written = append(written, f.Path)
	}
	return written, nil
}

func dockerFiles(c *config.Config, o targetOptions) ([]TargetFile, error) {
	runtimes, err := c.ValidateRuntimes()
	if err != nil {
		return nil, err
	}
	daemon := map[string]any{}
	if insecure := dockerInsecure(c); len(insecure) > 0 {
		daemon["insecure-registries"] = insecure
	}
	if len(runtimes) > 0 {
		daemon["runtimes"] = runtimes
	}
	if c.DockerDefaultRuntime != "" {
		daemon["default-runtime"] = c.DockerDefaultRuntime
	}
	data, err := Render("daemon.json.tmpl", map[string]any{"Daemon": daemon})
	if err != nil {
		return nil, err
	}
	files := []TargetFile{{Path: "etc/docker/daemon.json", Data: data, Mode: 0o644}}
	if c.Secure && !o.skipCA {
		ca, err := readCA(c)
		if err != nil {
			return nil, err
		}
		files = append(files, TargetFile{Path: filepath.Join("etc/docker/certs.d", c.TargetURL, "ca.crt"), Data: ca, Mode: 0o644})
	}
	if c.Authfile != "" {
		auth, err := readAuthfile(c.Authfile)
		if err != nil {
			return nil, err
		}
		files = append(files, TargetFile{Path: "root/.docker/config.json", Data: auth, Mode: 0o600, DirMode: 0o700})
	}
	return files, nil
}

// dockerInsecure lists the registries Docker on the target may reach over
// plain HTTP: DOCKER_REGISTRY_INSECURE, else the registry when INSECURE=1.
// Host-side addresses are translated to the target's view; in secure mode
// the registry itself is never listed.
func dockerInsecure(c *config.Config) []string {
	var list []string
	seen := map[string]bool{}
	add := func(a string) {
		if a != "" && !seen[a] && !(c.Secure && a == c.TargetURL) {
			seen[a] = true
			list = append(list, a)
		}
	}
	if len(c.DockerInsecure) > 0 {
		for _, a := range c.DockerInsecure {
			add(targetView(c, a))
		}
	} else if c.Insecure {
		add(c.TargetURL)
	}
	return list
}

// targetView translates a host-side address to what a target uses.
func targetView(c *config.Config, addr string) string {
	if addr == c.URL {
		return c.TargetURL
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		return config.TargetAddress(host, port)
	}
	return addr
}

func ociFiles(c *config.Config, o targetOptions) ([]TargetFile, error) {
	data, err := Render("registries.conf.tmpl", map[string]any{
		"Version":     buildinfo.Version,
		"Address":     c.TargetURL,
		"Namespace":   c.Namespace,
		"SearchFirst": c.SearchFirst,
		"Insecure":    !c.Secure && c.Insecure,
	})
	if err != nil {
		return nil, err
	}
	files := []TargetFile{{Path: "etc/containers/registries.conf.d/50-custom-registry.conf", Data: data, Mode: 0o644}}
	if c.Secure && !o.skipCA {
		ca, err := readCA(c)
		if err != nil {
			return nil, err
		}
		files = append(files, TargetFile{Path: filepath.Join("etc/containers/certs.d", c.TargetURL, "ca.crt"), Data: ca, Mode: 0o644})
	}
	if c.PodmanRuntime != "" {
		data, err := Render("oci-runtime.conf.tmpl", map[string]any{
			"Version": buildinfo.Version, "Runtime": c.PodmanRuntime, "RuntimePath": c.PodmanRuntimePath,
		})
		if err != nil {
			return nil, err
		}
		files = append(files, TargetFile{Path: "etc/containers/containers.conf.d/50-oci-runtime.conf", Data: data, Mode: 0o644})
	}
	if c.Authfile != "" {
		auth, err := readAuthfile(c.Authfile)
		if err != nil {
			return nil, err
		}
		files = append(files, TargetFile{Path: "etc/containers/auth.json", Data: auth, Mode: 0o600})
	}
	if c.Sign {
		signing, err := signingFiles(c)
		if err != nil {
			return nil, err
		}
		files = append(files, signing...)
		if !o.skipPolicy {
			f, err := policyFile(c, o.policyBase)
			if err != nil {
				return nil, err
			}
			files = append(files, f)
		}
	}
	return files, nil
}

func caFiles(c *config.Config) ([]TargetFile, error) {
	ca, err := readCA(c)
	if err != nil {
		return nil, err
	}
	paths := []string{
		filepath.Join("etc/docker/certs.d", c.TargetURL, "ca.crt"),
		filepath.Join("etc/containers/certs.d", c.TargetURL, "ca.crt"),
		"usr/local/share/ca-certificates/container-registry-ca.crt",
	}
	sort.Strings(paths)
	files := make([]TargetFile, 0, len(paths))
	for _, p := range paths {
		files = append(files, TargetFile{Path: p, Data: ca, Mode: 0o644})
	}
	return files, nil
}

func readCA(c *config.Config) ([]byte, error) {
	data, err := os.ReadFile(c.CACert())
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("CA certificate %s not found: run `bitbake container-registry-index -c generate_registry_script` (with CONTAINER_REGISTRY_SECURE=1) first", c.CACert())
		}
		return nil, fmt.Errorf("reading CA certificate: %w", err)
	}
	if _, err := readCert(c.CACert()); err != nil {
		return nil, err
	}
	return data, nil
}

func readAuthfile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTHFILE: %w", err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("CONTAINER_REGISTRY_AUTHFILE: %s is not valid JSON", path)
	}
	return data, nil
}
