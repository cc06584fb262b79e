package tests

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// conformanceBin builds the OCI distribution-spec conformance suite (a tool
// dependency in go.mod, fetched through the module proxy) once.
func conformanceBin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(toolBin), "oci-conformance")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "build", "-o", bin, "github.com/opencontainers/distribution-spec/conformance")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the conformance suite: %v\n%s", err, out)
	}
	return bin
}

type junitSuite struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Disabled int `xml:"disabled,attr"`
	Cases    []struct {
		Name    string    `xml:"name,attr"`
		Status  string    `xml:"status,attr"`
		Failure *struct{} `xml:"failure"`
		Error   *struct{} `xml:"error"`
	} `xml:"testsuite>testcase"`
}

// The official OCI distribution-spec conformance suite passes against the
// registry `start` runs, over plain HTTP and over TLS with htpasswd auth,
// with the pull, push, content discovery and content management workflows
// enabled, and with the registry's data in SeaweedFS's S3 (credentials
// required) behind the redis blob descriptor cache. Reports are kept under build/conformance/<mode>/.
//
// The referrers API and manifests with a subject (also a missing subject,
// and subjects with many referrers) are tested: serve implements them in
// front of distribution. Data kinds that distribution/v3 (the server we
// embed) does not implement are switched off: sha512 digests and
// non-distributable layers.
func TestOCIConformance(t *testing.T) {
	bin := conformanceBin(t)
	for _, mode := range []struct {
		name string
		vars map[string]string
		// s3 runs the registry on SeaweedFS's S3 with the redis cache.
		s3 bool
	}{
		{"http", nil, false},
		{"tls-auth", map[string]string{"CONTAINER_REGISTRY_SECURE": "1"}, false},
		{"s3-redis", nil, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			vars := mode.vars
			var creds string
			if mode.s3 {
				s3 := StartS3(t)
				vars = map[string]string{"CONTAINER_REGISTRY_BACKEND": s3.Backend("conformance"), "CONTAINER_REGISTRY_REDIS": StartRedis(t)}
				creds = s3.CredsFile(t)
			}
			e := NewEnv(t, vars)
			if creds != "" {
				e.Extra["CONTAINER_REGISTRY_BACKEND_CREDENTIALS"] = creds
			}
			if r := e.Run("start"); r.Code != 0 {
				t.Fatalf("start: %s", r.Out())
			}
			results, _ := filepath.Abs(filepath.Join("..", "build", "conformance", mode.name))
			os.RemoveAll(results)
			env := map[string]string{
				"OCI_REGISTRY":              "127.0.0.1:" + e.Port,
				"OCI_RESULTS_DIR":           results,
				"OCI_REPO1":                 "conformance/repo1",
				"OCI_REPO2":                 "conformance/repo2",
				"OCI_API_PULL":              "true",
				"OCI_API_PUSH":              "true",
				"OCI_API_TAGS_LIST":         "true",
				"OCI_API_TAGS_DELETE":       "true",
				"OCI_API_MANIFESTS_DELETE":  "true",
				"OCI_API_BLOBS_DELETE":      "true",
				"OCI_API_REFERRER":          "true",
				"OCI_DATA_SHA512":           "false",
				"OCI_DATA_SUBJECT":          "true",
				"OCI_DATA_SUBJECT_MISSING":  "true",
				"OCI_DATA_SUBJECT_LIST":     "true",
				"OCI_DATA_NONDISTRIBUTABLE": "false",
				"OCI_LOG":                   "error",
				"OCI_TLS":                   "disabled",
			}
			if mode.vars["CONTAINER_REGISTRY_SECURE"] == "1" {
				pw, err := os.ReadFile(filepath.Join(e.Storage, "auth", "password"))
				if err != nil {
					t.Fatal(err)
				}
				env["OCI_TLS"] = "enabled"
				env["SSL_CERT_FILE"] = filepath.Join(e.Storage, "pki", "ca.crt")
				env["OCI_USERNAME"] = "yocto"
				env["OCI_PASSWORD"] = strings.TrimSpace(string(pw))
			}
			cmd := exec.Command(bin)
			cmd.Dir = t.TempDir()
			cmd.Env = baseEnv()
			for k, v := range env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, _ := cmd.CombinedOutput()
			data, err := os.ReadFile(filepath.Join(results, "junit.xml"))
			if err != nil {
				t.Fatalf("no junit report: %v\n%s", err, out)
			}
			var suite junitSuite
			if err := xml.Unmarshal(data, &suite); err != nil {
				t.Fatalf("parsing junit.xml: %v", err)
			}
			if suite.Tests < 100 {
				t.Errorf("only %d conformance tests ran", suite.Tests)
			}
			if suite.Failures+suite.Errors > 0 {
				var failed []string
				for _, c := range suite.Cases {
					if c.Failure != nil || c.Error != nil {
						failed = append(failed, c.Name)
					}
				}
				t.Errorf("%d failures, %d errors of %d tests (report: %s):\n%s", suite.Failures, suite.Errors, suite.Tests, results, strings.Join(failed, "\n"))
			}
			referrers := 0
			for _, c := range suite.Cases {
				if strings.HasSuffix(c.Name, "/referrers") {
					referrers++
					if c.Status != "passed" {
						t.Errorf("%s: %s", c.Name, c.Status)
					}
				}
			}
			if referrers < 4 {
				t.Errorf("only %d referrers tests ran", referrers)
			}
			t.Logf("%s: %d tests, %d failures, %d errors, %d skipped, %d disabled, %d referrers queries; report in %s", mode.name, suite.Tests, suite.Failures, suite.Errors, suite.Skipped, suite.Disabled, referrers, results)
		})
	}
}
