package generator

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocireg-tool/ocireg-tool/config"
)

const testRequirement = `[{"type": "sigstoreSigned", "keyPath": "/k.pub", "signedIdentity": {"type": "matchRepository"}}]`

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return v
}

// The merge sets the registry's scope and keeps everything else of the
// policy: its default, other transports and other scopes of docker; a
// scope merged before is replaced, so merging again changes nothing.
func TestMergePolicy(t *testing.T) {
	tests := []struct {
		name, base, want string
	}{
		{"accept anything (container-host-config's)",
			`{"default": [{"type": "insecureAcceptAnything"}]}`,
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"reg:5000": ` + testRequirement + `}}}`},
		{"other scopes and transports kept",
			`{"default": [{"type": "reject"}], "transports": {"docker": {"docker.io": [{"type": "insecureAcceptAnything"}]}, "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}, "x-extension": 1}`,
			`{"default": [{"type": "reject"}], "transports": {"docker": {"docker.io": [{"type": "insecureAcceptAnything"}], "reg:5000": ` + testRequirement + `}, "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}, "x-extension": 1}`},
		{"earlier entry replaced",
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"reg:5000": [{"type": "insecureAcceptAnything"}], "reg:5000/yocto": [{"type": "reject"}]}}}`,
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"reg:5000": ` + testRequirement + `, "reg:5000/yocto": [{"type": "reject"}]}}}`},
		{"text kept as it is",
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"a&b.example/x<y>": [{"type": "reject"}]}}}`,
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"a&b.example/x<y>": [{"type": "reject"}], "reg:5000": ` + testRequirement + `}}}`},
		{"null transports",
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": null}`,
			`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"reg:5000": ` + testRequirement + `}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergePolicy([]byte(tt.base), "reg:5000", []byte(testRequirement))
			if err != nil {
				t.Fatal(err)
			}
			if g, w := decodeJSON(t, got), decodeJSON(t, []byte(tt.want)); !reflect.DeepEqual(g, w) {
				t.Errorf("merged:\n%s\nwant %s", got, tt.want)
			}
			if strings.Contains(string(got), `\u00`) {
				t.Errorf("merged policy has escapes the base did not:\n%s", got)
			}
			again, err := MergePolicy(got, "reg:5000", []byte(testRequirement))
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("a second merge changed the policy (%v):\n%s", err, again)
			}
		})
	}
	for _, bad := range []struct{ base, want string }{
		{``, "not a policy"},
		{`[]`, "not a policy"},
		{`null`, "not a policy"},
		{`{"default": []} {}`, "data after the object"},
		{`{"default": []}}`, "data after the object"},
		{`{"transports": {}}`, `no "default"`},
		{`{"default": [], "transports": []}`, `"transports"`},
		{`{"default": [], "transports": {"docker": "reg"}}`, `"transports"."docker"`},
	} {
		if _, err := MergePolicy([]byte(bad.base), "reg:5000", []byte(testRequirement)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("MergePolicy(%s): %v, want an error with %q", bad.base, err, bad.want)
		}
	}
}

// With signing on, the oci payload installs the public key, the
// registries.d entry and policy.json merged into the one the install root
// holds; --skip-policy leaves policy.json to its owner, and the policy
// payload merges into it there.
func TestTargetSigningPayload(t *testing.T) {
	c := goldenConfig(t, config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_SIGN": "1"})
	pub, _ := os.ReadFile(c.SigningPubFile())
	hostPolicy := `{"default": [{"type": "reject"}], "transports": {"docker": {"docker.io": [{"type": "insecureAcceptAnything"}]}}}`

	dest := t.TempDir()
	writeTestFile(t, filepath.Join(dest, PolicyPath), hostPolicy)
	files, err := InstallTarget(c, TargetOCI, dest)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{SigningKeyPath, RegistriesDSigned, PolicyPath} {
		if !contains(files, want) {
			t.Errorf("installed %v, no %s", files, want)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dest, SigningKeyPath)); !bytes.Equal(got, pub) {
		t.Errorf("%s is not the signing public key", SigningKeyPath)
	}
	var policy struct {
		Default    []map[string]any
		Transports map[string]map[string][]struct {
			Type           string
			KeyPath        string
			SignedIdentity map[string]string
		}
	}
	data, _ := os.ReadFile(filepath.Join(dest, PolicyPath))
	if err := json.Unmarshal(data, &policy); err != nil {
		t.Fatal(err)
	}
	req := policy.Transports["docker"][c.TargetURL]
	if len(req) != 1 || req[0].Type != "sigstoreSigned" || req[0].KeyPath != "/"+SigningKeyPath || req[0].SignedIdentity["type"] != "matchRepository" {
		t.Errorf("policy for %s: %+v\n%s", c.TargetURL, req, data)
	}
	if len(policy.Default) != 1 || policy.Default[0]["type"] != "reject" || len(policy.Transports["docker"]["docker.io"]) != 1 {
		t.Errorf("the host's policy was not kept:\n%s", data)
	}
	yml, _ := os.ReadFile(filepath.Join(dest, RegistriesDSigned))
	if !strings.Contains(string(yml), "\"10.0.2.2:5000\":\n    use-sigstore-attachments: true\n") {
		t.Errorf("registries.d entry:\n%s", yml)
	}

	// --skip-policy: container-host-config owns policy.json; the policy
	// payload then merges into the file it installed.
	dest = t.TempDir()
	files, err = InstallTarget(c, TargetOCI, dest, SkipPolicy())
	if err != nil || contains(files, PolicyPath) {
		t.Fatalf("oci --skip-policy installed %v (%v)", files, err)
	}
	writeTestFile(t, filepath.Join(dest, PolicyPath), hostPolicy)
	if files, err = InstallTarget(c, TargetPolicy, dest); err != nil || len(files) != 1 || files[0] != PolicyPath {
		t.Fatalf("policy payload: %v (%v)", files, err)
	}
	if merged, _ := os.ReadFile(filepath.Join(dest, PolicyPath)); !bytes.Equal(merged, data) {
		t.Errorf("policy payload merged otherwise than the oci payload:\n%s\nwant\n%s", merged, data)
	}
	// Without a policy.json, the policy starts from containers/image's default.
	fresh, err := TargetFiles(c, TargetPolicy)
	if err != nil || len(fresh) != 1 || !strings.Contains(string(fresh[0].Data), "insecureAcceptAnything") {
		t.Errorf("policy without a base: %v %v", err, paths(fresh))
	}
}

// What the signing payload refuses, naming the file or the setting; it
// writes nothing then.
func TestTargetSigningPayloadErrors(t *testing.T) {
	signed := config.Vars{"CONTAINER_REGISTRY_INSECURE": "1", "CONTAINER_REGISTRY_SIGN": "1"}
	c := goldenConfig(t, signed)

	off := goldenConfig(t, config.Vars{"CONTAINER_REGISTRY_INSECURE": "1"})
	if _, err := InstallTarget(off, TargetPolicy, t.TempDir()); err == nil || !strings.Contains(err.Error(), "CONTAINER_REGISTRY_SIGN") {
		t.Errorf("policy payload with signing off: %v", err)
	}
	files, err := TargetFiles(off, TargetOCI)
	if err != nil || contains(paths(files), PolicyPath) || contains(paths(files), SigningKeyPath) {
		t.Errorf("oci payload with signing off: %v (%v)", paths(files), err)
	}

	for name, setup := range map[string]func(dest string){
		"not JSON":    func(dest string) { writeTestFile(t, filepath.Join(dest, PolicyPath), "{") },
		"a directory": func(dest string) { os.MkdirAll(filepath.Join(dest, PolicyPath), 0o755) },
		"a link outside": func(dest string) {
			outside := filepath.Join(t.TempDir(), "policy.json")
			writeTestFile(t, outside, `{"default": []}`)
			linkTestFile(t, outside, filepath.Join(dest, PolicyPath))
		},
		"too large": func(dest string) {
			writeTestFile(t, filepath.Join(dest, PolicyPath), `{"default": [], "x": "`+strings.Repeat("a", MaxPolicyBytes)+`"}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			dest := t.TempDir()
			setup(dest)
			if _, err := InstallTarget(c, TargetOCI, dest); err == nil || !strings.Contains(err.Error(), PolicyPath) {
				t.Errorf("error %v does not name %s", err, PolicyPath)
			}
			if _, err := os.Stat(filepath.Join(dest, SigningKeyPath)); err == nil {
				t.Errorf("the key was installed although the payload failed")
			}
		})
	}

	for name, key := range map[string]string{
		"missing":       "",
		"not PEM":       "ssh-ed25519 AAAA",
		"a certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	} {
		t.Run("key "+name, func(t *testing.T) {
			c := goldenConfig(t, signed)
			if key == "" {
				os.Remove(c.SigningPubFile())
			} else {
				writeTestFile(t, c.SigningPubFile(), key)
			}
			if _, err := TargetFiles(c, TargetOCI); err == nil || !strings.Contains(err.Error(), c.SigningPubFile()) {
				t.Errorf("error %v does not name %s", err, c.SigningPubFile())
			}
		})
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func linkTestFile(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func paths(files []TargetFile) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Whatever policy.json a target holds, a merge that succeeds gives JSON
// holding the registry's requirement, and merging again changes nothing.
func FuzzMergePolicy(f *testing.F) {
	for _, seed := range []string{
		`{"default": [{"type": "insecureAcceptAnything"}]}`,
		`{"default": [{"type": "reject"}], "transports": {"docker": {"docker.io": [{"type": "insecureAcceptAnything"}]}, "atomic": {}}}`,
		`{"default": [], "transports": null}`,
		`{"default": [], "transports": {"docker": {"reg:5000": []}}}`,
		`{"default": [], "x": "a&b<c>\u2028"}`,
		`[]`, `{`, `{"default": []}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, base []byte) {
		got, err := MergePolicy(base, "reg:5000", []byte(testRequirement))
		if err != nil {
			return
		}
		var doc struct {
			Default    json.RawMessage
			Transports map[string]map[string]json.RawMessage
		}
		if err := json.Unmarshal(got, &doc); err != nil {
			t.Fatalf("merged policy is not JSON: %v\n%s", err, got)
		}
		if doc.Default == nil || doc.Transports["docker"]["reg:5000"] == nil {
			t.Fatalf("merged policy lacks the default or the registry's scope:\n%s", got)
		}
		again, err := MergePolicy(got, "reg:5000", []byte(testRequirement))
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("a second merge changed the policy (%v):\n%s\n%s", err, got, again)
		}
	})
}
