package tests

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

const (
	authUser = "builder"
	authPass = "s3cret-Pw-42"
)

func writeFile(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// A registry with htpasswd auth on 127.0.0.1 accepts each mode's
// credentials and rejects wrong ones; no secret shows in the output.
func TestPushAuthModes(t *testing.T) {
	reg := testreg.New(t, testreg.WithHtpasswd(authUser, authPass))
	root := filepath.Join(t.TempDir(), "images")
	sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}, Latest: true}})
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_URL": reg.Host})
	dir := t.TempDir()
	b64 := base64.StdEncoding.EncodeToString([]byte(authUser + ":" + authPass))
	credsfile := writeFile(t, dir, "creds", "# registry credentials\n\nexport CONTAINER_REGISTRY_USER='"+authUser+"'\nCONTAINER_REGISTRY_PASSWORD=\""+authPass+"\"\n", 0o600)
	tokenfile := writeFile(t, dir, "tokencreds", "CONTAINER_REGISTRY_USER="+authUser+"\nCONTAINER_REGISTRY_TOKEN="+authPass+"\nCONTAINER_REGISTRY_PASSWORD=ignored\n", 0o600)
	authfile := writeFile(t, dir, "auth.json", fmt.Sprintf(`{"auths":{"%s":{"auth":"%s"}}}`, reg.Host, b64), 0o600)
	authfile2 := writeFile(t, dir, "auth2.json", fmt.Sprintf(`{"auths":{"http://%s/v2/":{"username":"%s","password":"%s"}}}`, reg.Host, authUser, authPass), 0o600)
	home := t.TempDir()
	writeFile(t, home, ".docker/config.json", fmt.Sprintf(`{"auths":{"%s":{"auth":"%s"}}}`, reg.Host, b64), 0o600)
	// A credential helper, found on PATH.
	bin := t.TempDir()
	writeFile(t, bin, "docker-credential-fake", fmt.Sprintf("#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"%s\",\"Secret\":\"%s\"}'\n", authUser, authPass), 0o755)
	helperCfg := writeFile(t, dir, "helper.json", fmt.Sprintf(`{"credHelpers":{"%s":"fake"}}`, reg.Host), 0o600)
	storeCfg := writeFile(t, dir, "store.json", `{"auths":{},"credsStore":"fake"}`, 0o600)
	path := bin + ":" + os.Getenv("PATH")

	ok := []struct {
		what string
		env  map[string]string
		args []string
	}{
		{"--creds", nil, []string{"--creds", authUser + ":" + authPass}},
		{"--credsfile", nil, []string{"--credsfile", credsfile}},
		{"--credsfile token", nil, []string{"--credsfile", tokenfile}},
		{"--authfile auth", nil, []string{"--authfile", authfile}},
		{"--authfile user/password", nil, []string{"--authfile", authfile2}},
		{"--use-home-auth", map[string]string{"HOME": home}, []string{"--use-home-auth"}},
		{"mode home", map[string]string{"HOME": home, "CONTAINER_REGISTRY_AUTH_MODE": "home"}, nil},
		{"mode authfile", map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "authfile", "CONTAINER_REGISTRY_AUTHFILE": authfile}, nil},
		{"mode credsfile", map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "credsfile", "CONTAINER_REGISTRY_CREDSFILE": credsfile}, nil},
		{"mode env user", map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "env", "CONTAINER_REGISTRY_USER": authUser, "CONTAINER_REGISTRY_PASSWORD": authPass}, nil},
		{"mode env token", map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "env", "CONTAINER_REGISTRY_USER": authUser, "CONTAINER_REGISTRY_TOKEN": authPass}, nil},
		{"--token", map[string]string{"CONTAINER_REGISTRY_USER": authUser}, []string{"--token", authPass}},
		{"credHelpers", map[string]string{"PATH": path}, []string{"--authfile", helperCfg}},
		{"credsStore", map[string]string{"PATH": path}, []string{"--authfile", storeCfg}},
	}
	for i, c := range ok {
		tag := fmt.Sprintf("t%d", i)
		r := e.RunEnv(c.env, append([]string{"push", "app", "--tag", tag}, c.args...)...)
		if r.Code != 0 {
			t.Errorf("%s: exit %d:\n%s", c.what, r.Code, r.Out())
			continue
		}
		if strings.Contains(r.Out(), authPass) || strings.Contains(r.Out(), b64) {
			t.Errorf("%s: output shows the secret:\n%s", c.what, r.Out())
		}
		if (c.what == "--creds" || c.what == "--token") && !strings.Contains(r.Stdout, "shell history") {
			t.Errorf("%s: no shell-history warning:\n%s", c.what, r.Stdout)
		}
	}
	bad := writeFile(t, dir, "bad", "CONTAINER_REGISTRY_USER="+authUser+"\n", 0o600)
	wrong := writeFile(t, dir, "wrong", "CONTAINER_REGISTRY_USER="+authUser+"\nCONTAINER_REGISTRY_PASSWORD=nope\n", 0o600)
	notJSON := writeFile(t, dir, "notjson", "{", 0o600)
	other := writeFile(t, dir, "other.json", `{"auths":{"elsewhere:5000":{"auth":"`+b64+`"}}}`, 0o600)
	missingHelper := writeFile(t, dir, "nohelper.json", fmt.Sprintf(`{"credHelpers":{"%s":"nosuchhelper"}}`, reg.Host), 0o600)
	fail := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, nil, "requires authentication"},
		{nil, []string{"--creds", authUser + ":wrong"}, "rejected the credentials from --creds (user " + authUser + ")"},
		{nil, []string{"--credsfile", wrong}, "rejected the credentials from credentials file " + wrong},
		{nil, []string{"--credsfile", bad}, "credentials file " + bad + " must contain CONTAINER_REGISTRY_TOKEN or both CONTAINER_REGISTRY_USER and CONTAINER_REGISTRY_PASSWORD"},
		{nil, []string{"--authfile", notJSON}, "auth file " + notJSON + ": not a Docker config.json"},
		{nil, []string{"--authfile", other}, "has no credentials for " + reg.Host},
		{nil, []string{"--authfile", missingHelper}, "docker-credential-nosuchhelper, which is not on PATH"},
		{map[string]string{"CONTAINER_REGISTRY_AUTH_MODE": "env", "CONTAINER_REGISTRY_USER": authUser}, nil, "needs CONTAINER_REGISTRY_TOKEN or both"},
		{nil, []string{"--creds", "a:b", "--token", "c"}, "--creds and --token are exclusive"},
	}
	for _, c := range fail {
		r := e.RunEnv(c.env, append([]string{"push", "app", "--tag", "never"}, c.args...)...)
		if r.Code == 0 || !strings.Contains(r.Stdout, c.want) {
			t.Errorf("%v %v: exit %d, want failure with %q:\n%s", c.env, c.args, r.Code, c.want, r.Out())
		}
		if strings.Contains(r.Out(), authPass) {
			t.Errorf("%v: output shows the secret", c.args)
		}
	}
	// Nothing was tagged "never".
	repo, _ := name.NewRepository(reg.Host + "/yocto/app")
	tags, err := remote.List(repo, remote.WithAuth(&authn.Basic{Username: authUser, Password: authPass}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range tags {
		if tg == "never" {
			t.Fatal("a failed push created a tag")
		}
	}
}

// multiArchSource pushes a two-platform index to a second registry.
func multiArchSource(t *testing.T, host, repo string, opts ...remote.Option) v1.Hash {
	t.Helper()
	var imgs []v1.Image
	for _, a := range []string{"amd64", "arm64"} {
		img, err := sample.Image(sample.Spec{Name: "thirdparty", Machine: "upstream", Arch: a, Stamp: "20250101000000"})
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	idx, err := sample.Index(imgs...)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/" + repo)
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d
}

func tarDir(t *testing.T, dir, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
		return nil
	})
	tw.Close()
	f.Close()
}

// Import from a second local registry (every platform, or narrowed), from
// an OCI layout and an OCI archive, with and without source credentials.
func TestImport(t *testing.T) {
	src := testreg.New(t)
	want := multiArchSource(t, src.Host, "lib/thirdparty:1.0")
	e := NewEnv(t, nil)
	r := e.mustRun(t, 1, "import", src.Host+"/lib/thirdparty:1.0")
	wantOut(t, r, "down", "Registry not responding at")
	e.mustRun(t, 0, "start")

	r = e.mustRun(t, 0, "import", "docker://"+src.Host+"/lib/thirdparty:1.0")
	wantOut(t, r, "import", "linux/amd64, linux/arm64", "vdkr --registry 10.0.2.2:"+e.Port+"/yocto pull thirdparty:1.0")
	raw, plats := rawIndex(t, e.URL+"/yocto/thirdparty:1.0")
	if d, _, _ := v1.SHA256(strings.NewReader(raw)); d != want || len(plats) != 2 {
		t.Fatalf("imported %s %v, want %s", d, plats, want)
	}
	e.mustRun(t, 0, "import", src.Host+"/lib/thirdparty:1.0", "tp-arm", "--platform", "linux/arm64")
	if _, p := rawIndex(t, e.URL+"/yocto/tp-arm:1.0"); len(p) != 1 || p["linux/arm64"] == "" {
		t.Fatalf("--platform: %v", p)
	}
	// OCI layout and archive, offline.
	root := filepath.Join(t.TempDir(), "images")
	dirs, _ := sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "local", Machine: "qemux86-64", Arch: "x86_64", Stamp: "20260108123456"}}})
	r = e.mustRun(t, 0, "import", "oci:"+dirs[0]+":latest", "fromlayout", "--tag", "v2")
	wantOut(t, r, "oci", "-> "+e.URL+"/yocto/fromlayout:v2", "vdkr --registry")
	skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+e.URL+"/yocto/fromlayout:v2")
	archive := filepath.Join(t.TempDir(), "local.tar")
	tarDir(t, dirs[0], archive)
	e.mustRun(t, 0, "import", "oci-archive:"+archive)
	skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+e.URL+"/yocto/local:latest")

	// Errors.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "import needs a source image"},
		{[]string{"import", src.Host + "/lib/thirdparty@" + want.String()}, "digest reference"},
		{[]string{"import", src.Host + "/lib/thirdparty:1.0", "--platform", "linux/s390x"}, "no platform matches (available: linux/amd64, linux/arm64)"},
		{[]string{"import", "oci:/nonexistent"}, "oci layout /nonexistent"},
		{[]string{"import", src.Host + "/lib/nosuch:1"}, "reading source"},
	} {
		r := e.Run(c.args...)
		if r.Code == 0 || !strings.Contains(r.Stdout, c.want) {
			t.Errorf("%v: exit %d, want failure with %q:\n%s", c.args, r.Code, c.want, r.Out())
		}
	}
	// By digest with a tag.
	e.mustRun(t, 0, "import", src.Host+"/lib/thirdparty@"+want.String(), "pinned", "--tag", "1.0")

	// An authenticated source.
	priv := testreg.New(t, testreg.WithHtpasswd(authUser, authPass))
	multiArchSource(t, priv.Host, "org/private:v1", remote.WithAuth(&authn.Basic{Username: authUser, Password: authPass}))
	r = e.Run("import", priv.Host+"/org/private:v1")
	if r.Code == 0 {
		t.Fatalf("private source without credentials imported:\n%s", r.Out())
	}
	creds := writeFile(t, t.TempDir(), "creds", "CONTAINER_REGISTRY_USER="+authUser+"\nCONTAINER_REGISTRY_PASSWORD="+authPass+"\n", 0o600)
	e.mustRun(t, 0, "import", priv.Host+"/org/private:v1", "--src-credsfile", creds)
	r = e.mustRun(t, 0, "import", priv.Host+"/org/private:v1", "private2", "--src-creds", authUser+":"+authPass)
	wantOut(t, r, "src-creds", "--src-creds: other local users can read the password in this command's argument list (ps) while it runs, and your shell history keeps it; prefer --src-password-stdin")
}
