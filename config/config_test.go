package config

import (
	"os"
	"strings"
	"testing"
)

func TestFromVarsDefaults(t *testing.T) {
	c, err := FromVars(Vars{"TOPDIR": "/srv/build"})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"URL", c.URL, "localhost:5000"},
		{"Namespace", c.Namespace, "yocto"},
		{"TagStrategy", strings.Join(c.TagStrategy, " "), "timestamp latest"},
		{"Attach", AttachString(c.Attach), "sbom manifest"},
		{"Storage", c.Storage, "/srv/build/container-registry"},
		{"Username", c.Username, "yocto"},
		{"AuthMode", c.AuthMode, "none"},
		{"TargetURL", c.TargetURL, "10.0.2.2:5000"},
		{"Mode", c.Mode(), "insecure (HTTP)"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.CADays != 3650 || c.CertDays != 365 || c.Secure || c.Auth || !c.SearchFirst {
		t.Errorf("CADays %d CertDays %d Secure %v Auth %v SearchFirst %v", c.CADays, c.CertDays, c.Secure, c.Auth, c.SearchFirst)
	}
}

func TestFromVarsModes(t *testing.T) {
	tests := []struct {
		name         string
		vars         Vars
		secure, auth bool
		mode         string
		warn         bool
	}{
		{"secure follows to auth", Vars{"CONTAINER_REGISTRY_SECURE": "1"}, true, true, "secure (TLS + auth)", false},
		{"secure TLS only", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"}, true, false, "secure (TLS only)", false},
		{"auth implies secure", Vars{"CONTAINER_REGISTRY_AUTH": "1"}, true, true, "secure (TLS + auth)", true},
		{"insecure", Vars{"CONTAINER_REGISTRY_INSECURE": "1"}, false, false, "insecure (HTTP)", false},
		{"auth 0 without secure", Vars{"CONTAINER_REGISTRY_AUTH": "0"}, false, false, "insecure (HTTP)", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.vars["CONTAINER_REGISTRY_STORAGE"] = "/srv/cr"
			c, err := FromVars(tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if c.Secure != tt.secure || c.Auth != tt.auth || c.Mode() != tt.mode {
				t.Errorf("secure %v auth %v mode %q", c.Secure, c.Auth, c.Mode())
			}
			if (len(c.Warnings) > 0) != tt.warn {
				t.Errorf("warnings = %v, want some: %v", c.Warnings, tt.warn)
			}
		})
	}
}

func TestFromVarsErrors(t *testing.T) {
	tests := []struct {
		name string
		vars Vars
		want string
	}{
		{"secure and insecure", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_INSECURE": "1"}, "contradict each other"},
		{"auth with insecure", Vars{"CONTAINER_REGISTRY_AUTH": "1", "CONTAINER_REGISTRY_INSECURE": "1"}, "contradict"},
		{"url without port", Vars{"CONTAINER_REGISTRY_URL": "localhost"}, "CONTAINER_REGISTRY_URL"},
		{"url with scheme", Vars{"CONTAINER_REGISTRY_URL": "http://localhost:5000"}, "without a scheme"},
		{"url bad port", Vars{"CONTAINER_REGISTRY_URL": "localhost:99999"}, "invalid port"},
		{"url bad host", Vars{"CONTAINER_REGISTRY_URL": "bad_host!:5000"}, "invalid host"},
		{"namespace uppercase", Vars{"CONTAINER_REGISTRY_NAMESPACE": "Yocto"}, "CONTAINER_REGISTRY_NAMESPACE"},
		{"namespace spaces", Vars{"CONTAINER_REGISTRY_NAMESPACE": "my ns"}, "CONTAINER_REGISTRY_NAMESPACE"},
		{"strategy chars", Vars{"CONTAINER_REGISTRY_TAG_STRATEGY": "latest;rm"}, "invalid characters"},
		{"strategy unknown", Vars{"CONTAINER_REGISTRY_TAG_STRATEGY": "latest nightly"}, `unknown strategy "nightly"`},
		{"strategy empty", Vars{"CONTAINER_REGISTRY_TAG_STRATEGY": " "}, "CONTAINER_REGISTRY_TAG_STRATEGY"},
		{"attach unknown", Vars{"CONTAINER_REGISTRY_ATTACH": "sbom spdx"}, `CONTAINER_REGISTRY_ATTACH: unknown kind "spdx" (valid: sbom manifest, or none alone)`},
		{"attach none with a kind", Vars{"CONTAINER_REGISTRY_ATTACH": "none sbom"}, `CONTAINER_REGISTRY_ATTACH: unknown kind "none"`},
		{"attach empty", Vars{"CONTAINER_REGISTRY_ATTACH": " "}, "CONTAINER_REGISTRY_ATTACH: empty"},
		{"cert days zero", Vars{"CONTAINER_REGISTRY_CERT_DAYS": "0"}, "CONTAINER_REGISTRY_CERT_DAYS"},
		{"ca days text", Vars{"CONTAINER_REGISTRY_CA_DAYS": "ten"}, "CONTAINER_REGISTRY_CA_DAYS"},
		{"ca days negative", Vars{"CONTAINER_REGISTRY_CA_DAYS": "-5"}, "CONTAINER_REGISTRY_CA_DAYS"},
		{"auth mode", Vars{"CONTAINER_REGISTRY_AUTH_MODE": "kerberos"}, "none, home, authfile, credsfile, env"},
		{"authfile missing", Vars{"CONTAINER_REGISTRY_AUTH_MODE": "authfile"}, "CONTAINER_REGISTRY_AUTHFILE"},
		{"credsfile missing", Vars{"CONTAINER_REGISTRY_AUTH_MODE": "credsfile"}, "CONTAINER_REGISTRY_CREDSFILE"},
		{"bool", Vars{"CONTAINER_REGISTRY_SECURE": "maybe"}, "CONTAINER_REGISTRY_SECURE"},
		{"san kind", Vars{"CONTAINER_REGISTRY_CERT_SAN": "URI:x"}, "CONTAINER_REGISTRY_CERT_SAN"},
		{"san ip", Vars{"CONTAINER_REGISTRY_CERT_SAN": "IP:300.1.1.1"}, "not a valid IP"},
		{"san dns", Vars{"CONTAINER_REGISTRY_CERT_SAN": "DNS:bad_name!"}, "not a valid DNS"},
		{"san empty", Vars{"CONTAINER_REGISTRY_CERT_SAN": "DNS:"}, "CONTAINER_REGISTRY_CERT_SAN"},
		{"storage unexpanded", Vars{"CONTAINER_REGISTRY_STORAGE": "${TOPDIR}/x"}, "CONTAINER_REGISTRY_STORAGE"},
		{"username colon", Vars{"CONTAINER_REGISTRY_USERNAME": "a:b"}, "CONTAINER_REGISTRY_USERNAME"},
		{"target url", Vars{"CONTAINER_REGISTRY_TARGET_URL": "10.0.2.2"}, "CONTAINER_REGISTRY_TARGET_URL"},
		{"password with spaces", Vars{"CONTAINER_REGISTRY_PASSWORD": " s3cret "}, "CONTAINER_REGISTRY_PASSWORD: must not start or end with white space"},
		{"password with a newline", Vars{"CONTAINER_REGISTRY_PASSWORD": "a\nb"}, "single line"},
		{"storage not UTF-8", Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/\xff/cr"}, "CONTAINER_REGISTRY_STORAGE: \"/srv/\\xff/cr\" is not valid UTF-8"},
		{"deploy dir not UTF-8", Vars{"DEPLOY_DIR_IMAGES": "/srv/\xfe"}, "DEPLOY_DIR_IMAGES"},
		{"keep text", Vars{"CONTAINER_REGISTRY_RETENTION_KEEP": "five"}, `CONTAINER_REGISTRY_RETENTION_KEEP: "five" is not a whole number of builds`},
		{"keep negative", Vars{"CONTAINER_REGISTRY_RETENTION_KEEP": "-1"}, "CONTAINER_REGISTRY_RETENTION_KEEP"},
		{"keep huge", Vars{"CONTAINER_REGISTRY_RETENTION_KEEP": "99999999999999999999"}, "CONTAINER_REGISTRY_RETENTION_KEEP"},
		{"days fraction", Vars{"CONTAINER_REGISTRY_RETENTION_DAYS": "1.5"}, `CONTAINER_REGISTRY_RETENTION_DAYS: "1.5" is not a whole number of days`},
		{"protect bad glob", Vars{"CONTAINER_REGISTRY_RETENTION_PROTECT": "latest release-[1"}, `CONTAINER_REGISTRY_RETENTION_PROTECT: "release-[1" is not a tag pattern`},
		{"protect slash", Vars{"CONTAINER_REGISTRY_RETENTION_PROTECT": "a/b"}, "CONTAINER_REGISTRY_RETENTION_PROTECT"},
		{"on push", Vars{"CONTAINER_REGISTRY_RETENTION_ON_PUSH": "always"}, "CONTAINER_REGISTRY_RETENTION_ON_PUSH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, ok := tt.vars["CONTAINER_REGISTRY_STORAGE"]; !ok {
				tt.vars["CONTAINER_REGISTRY_STORAGE"] = "/srv/cr"
			}
			_, err := FromVars(tt.vars)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// The retention settings keep everything by default; set, they parse.
func TestRetentionSettings(t *testing.T) {
	c, err := FromVars(Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/cr"})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Retention; r.Keep != 0 || r.Days != 0 || strings.Join(r.Protect, " ") != "latest" || r.OnPush {
		t.Errorf("defaults: %+v", r)
	}
	c, err = FromVars(Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/cr", "CONTAINER_REGISTRY_RETENTION_KEEP": " 5 ",
		"CONTAINER_REGISTRY_RETENTION_DAYS": "0", "CONTAINER_REGISTRY_RETENTION_PROTECT": "latest  release-* v[0-9]*",
		"CONTAINER_REGISTRY_RETENTION_ON_PUSH": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Retention; r.Keep != 5 || r.Days != 0 || strings.Join(r.Protect, ",") != "latest,release-*,v[0-9]*" || !r.OnPush {
		t.Errorf("set: %+v", r)
	}
	c, err = FromVars(Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/cr", "CONTAINER_REGISTRY_RETENTION_PROTECT": ""})
	if err != nil || len(c.Retention.Protect) != 0 {
		t.Errorf("empty protect: %v %v", c.Retention.Protect, err)
	}
}

// Flags beat the environment, which beats the dump, which beats defaults.
func TestLoadPrecedence(t *testing.T) {
	dump := t.TempDir() + "/env"
	writeFile(t, dump, "CONTAINER_REGISTRY_URL=\"dump:1\"\nCONTAINER_REGISTRY_NAMESPACE=\"fromdump\"\nCONTAINER_REGISTRY_STORAGE=\"/dump\"\n")
	c, err := Load(Sources{Dump: dump, Environ: []string{"CONTAINER_REGISTRY_URL=env:2", "CONTAINER_REGISTRY_STORAGE=/env"}, Flags: Vars{"CONTAINER_REGISTRY_STORAGE": "/flag"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL != "env:2" || c.Namespace != "fromdump" || c.Storage != "/flag" || c.Username != "yocto" {
		t.Errorf("URL %q namespace %q storage %q user %q", c.URL, c.Namespace, c.Storage, c.Username)
	}
	for name, want := range map[string]Level{"CONTAINER_REGISTRY_URL": LevelEnv, "CONTAINER_REGISTRY_NAMESPACE": LevelDump, "CONTAINER_REGISTRY_STORAGE": LevelFlag, "CONTAINER_REGISTRY_USERNAME": LevelDefault} {
		if got := c.Get(name).Level; got != want {
			t.Errorf("%s: level %d, want %d", name, got, want)
		}
	}
	if _, err := Load(Sources{Dump: t.TempDir() + "/missing"}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing dump: %v", err)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "::1": true, "[::1]": true,
		"0:0:0:0:0:0:0:1": true, "127.0.0.2": false, "10.0.2.2": false, "buildhost": false, "": false,
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestTargetAddress(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:5000":   "10.0.2.2:5000",
		"127.0.0.1:5001":   "10.0.2.2:5001",
		"LOCALHOST:5000":   "10.0.2.2:5000",
		"buildhost:5000":   "buildhost:5000",
		"192.168.1.5:5000": "192.168.1.5:5000",
		"[::1]:5000":       "10.0.2.2:5000",
	} {
		c, err := FromVars(Vars{"CONTAINER_REGISTRY_URL": in, "CONTAINER_REGISTRY_STORAGE": "/x"})
		if err != nil {
			t.Fatal(err)
		}
		if c.TargetURL != want {
			t.Errorf("%s -> %s, want %s", in, c.TargetURL, want)
		}
	}
	c, _ := FromVars(Vars{"CONTAINER_REGISTRY_TARGET_URL": "reg.lan:443", "CONTAINER_REGISTRY_STORAGE": "/x"})
	if c.TargetURL != "reg.lan:443" {
		t.Errorf("explicit target URL = %s", c.TargetURL)
	}
}

// The mode across levels: the environment's choice wins over the helper's
// baked one; a contradiction is an error only within one level.
func TestModeAcrossLevels(t *testing.T) {
	tests := []struct {
		name       string
		baked, env Vars
		mode       string // "" means an error containing errText
		errText    string
		note       string
	}{
		{"env secure over baked insecure", Vars{"CONTAINER_REGISTRY_INSECURE": "1"}, Vars{"CONTAINER_REGISTRY_SECURE": "1"}, "secure (TLS + auth)", "", "secure mode: CONTAINER_REGISTRY_SECURE=1 from the environment overrides CONTAINER_REGISTRY_INSECURE=1 from the helper script"},
		{"env insecure over baked secure", Vars{"CONTAINER_REGISTRY_SECURE": "1"}, Vars{"CONTAINER_REGISTRY_INSECURE": "1"}, "insecure (HTTP)", "", "insecure mode: CONTAINER_REGISTRY_INSECURE=1 from the environment overrides CONTAINER_REGISTRY_SECURE=1 from the helper script"},
		{"env auth over baked insecure", Vars{"CONTAINER_REGISTRY_INSECURE": "1"}, Vars{"CONTAINER_REGISTRY_AUTH": "1"}, "secure (TLS + auth)", "", "CONTAINER_REGISTRY_AUTH=1 from the environment overrides"},
		{"env auth 0 over baked auth 1", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "1"}, Vars{"CONTAINER_REGISTRY_AUTH": "0"}, "secure (TLS only)", "", ""},
		{"env auth 1 over baked auth 0", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "0"}, Vars{"CONTAINER_REGISTRY_AUTH": "1"}, "secure (TLS + auth)", "", ""},
		{"env secure 0 over baked secure", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "1"}, Vars{"CONTAINER_REGISTRY_SECURE": "0"}, "insecure (HTTP)", "", ""},
		{"env insecure over baked auth", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_AUTH": "1"}, Vars{"CONTAINER_REGISTRY_INSECURE": "1"}, "insecure (HTTP)", "", "insecure mode"},
		{"both in env", nil, Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_INSECURE": "1"}, "", "CONTAINER_REGISTRY_SECURE=1 from the environment and CONTAINER_REGISTRY_INSECURE=1 from the environment contradict", ""},
		{"both baked", Vars{"CONTAINER_REGISTRY_SECURE": "1", "CONTAINER_REGISTRY_INSECURE": "1"}, nil, "", "contradict", ""},
		{"auth and insecure in env", nil, Vars{"CONTAINER_REGISTRY_AUTH": "1", "CONTAINER_REGISTRY_INSECURE": "1"}, "", "contradict", ""},
		{"baked default, env secure", Vars{"CONTAINER_REGISTRY_SECURE": "0", "CONTAINER_REGISTRY_INSECURE": "0"}, Vars{"CONTAINER_REGISTRY_SECURE": "1"}, "secure (TLS + auth)", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baked := Vars{"CONTAINER_REGISTRY_STORAGE": "/srv/cr"}.Overlay(tt.baked)
			environ := []string{BakedVar + "=" + FormatDump(baked)}
			for k, v := range tt.env {
				environ = append(environ, k+"="+v)
			}
			c, err := Load(Sources{Environ: environ})
			if tt.mode == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("error = %v, want %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Mode() != tt.mode {
				t.Errorf("mode %q, want %q", c.Mode(), tt.mode)
			}
			if c.Secure == c.Insecure && c.Secure {
				t.Errorf("both secure and insecure")
			}
			notes := strings.Join(c.Notes, "\n")
			if tt.note != "" && !strings.Contains(notes, tt.note) {
				t.Errorf("notes %q, want %q", notes, tt.note)
			}
			if tt.note == "" && notes != "" {
				t.Errorf("unexpected notes %q", notes)
			}
		})
	}
}

// Baked values are the dump level; their round trip through the script
// variable keeps every value.
func TestBakedRoundTrip(t *testing.T) {
	c, err := FromVars(Vars{"TOPDIR": "/srv/b", "CONTAINER_REGISTRY_URL": "buildhost:5001", "CONTAINER_REGISTRY_TAG_STRATEGY": "sha  latest", "CONTAINER_REGISTRY_CERT_SAN": "DNS:a.b, IP:1.2.3.4"})
	if err != nil {
		t.Fatal(err)
	}
	baked := c.BakedVars()
	if _, ok := baked["CONTAINER_REGISTRY_PASSWORD"]; ok {
		t.Fatal("password baked")
	}
	again, err := Load(Sources{Environ: []string{BakedVar + "=" + FormatDump(baked)}})
	if err != nil {
		t.Fatal(err)
	}
	if again.URL != c.URL || again.Storage != "/srv/b/container-registry" || strings.Join(again.TagStrategy, ",") != "sha,latest" || len(again.CertSANs) != 2 {
		t.Errorf("round trip: %+v", again)
	}
	if lv := again.Get("CONTAINER_REGISTRY_URL"); lv.Level != LevelDump || lv.From != "the helper script" {
		t.Errorf("baked level %+v", lv)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A NUL byte in a dump value is refused with file:line.
func TestDumpNUL(t *testing.T) {
	_, err := ParseDump(strings.NewReader("A=\"1\"\nB=\"x\x00y\"\n"), "env.dump")
	if err == nil || !strings.Contains(err.Error(), "env.dump:2: B: the value holds a NUL byte") {
		t.Fatalf("NUL: %v", err)
	}
}
