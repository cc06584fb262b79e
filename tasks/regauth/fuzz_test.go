package regauth

import (
	"regexp"
	"strings"
	"testing"
)

var secretLineRe = regexp.MustCompile(`(?m)^\s*(?:export\s+)?CONTAINER_REGISTRY_(?:PASSWORD|TOKEN)\s*=\s*["']?([A-Za-z0-9]{8,})`)

// FuzzParseCredentials: the credentials-file reader never panics, accepts
// only files that yield credentials, and never quotes a secret in an error.
func FuzzParseCredentials(f *testing.F) {
	f.Add("CONTAINER_REGISTRY_TOKEN=ghp_abcdefgh\n")
	f.Add("# c\nexport CONTAINER_REGISTRY_USER=me\nCONTAINER_REGISTRY_PASSWORD='p w'\n")
	f.Add("CONTAINER_REGISTRY_USER=\"me\"\nCONTAINER_REGISTRY_PASSWORD=\"Secret123\" extra\n")
	f.Add("CONTAINER_REGISTRY_PASSWORD=\"Secret12345\\x\n")
	f.Add("=novalue\n")
	f.Fuzz(func(t *testing.T, in string) {
		res, err := ParseCredentials(strings.NewReader(in), "creds")
		if err != nil {
			for _, m := range secretLineRe.FindAllStringSubmatch(in, -1) {
				if strings.Contains(err.Error(), m[1]) {
					t.Fatalf("error quotes a secret: %v", err)
				}
			}
			return
		}
		if res.Auth == nil || res.Source == "" {
			t.Fatalf("accepted %q without credentials: %+v", in, res)
		}
	})
}
