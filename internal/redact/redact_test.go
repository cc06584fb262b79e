package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"s3://reg/p?endpoint=http://s3.lab:8333&region=eu", "s3://reg/p?endpoint=http://s3.lab:8333&region=eu"},
		{"s3://AK:sk@reg/p", "s3://REDACTED@reg/p"},
		{"s3://reg?endpoint=http://AK:sk@s3.lab/x&region=eu", "s3://reg?endpoint=http://REDACTED@s3.lab/x&region=eu"},
		{"s3://reg?region=eu;endpoint=https://AK:sk@s3.lab", "s3://reg?region=eu;endpoint=https://REDACTED@s3.lab"},
		{"s3://reg?endpoint=http%3A%2F%2FAK%3Ask%40s3.lab", "s3://reg?endpoint=http%3A%2F%2FREDACTED%40s3.lab"},
		{"s3://reg?endpoint=http://AK:sk@s3.lab%zz", "s3://reg?endpoint=http://REDACTED@s3.lab%zz"},
		{"AK:sk@reg.lab:5000", "REDACTED@reg.lab:5000"},
		{"http://a@b:sk@host/p@q", "http://REDACTED@host/p@q"},
		{"localhost:5000", "localhost:5000"},
		{"AK:sk@reg.lab:5000", "REDACTED@reg.lab:5000"},
		{"alpine@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd", "alpine@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd"},
		{"docker.io/library/alpine@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd", "docker.io/library/alpine@sha256:0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd0123abcd"},
		{"", ""},
	} {
		got := URL(tc.in)
		if got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, "sk@") || strings.Contains(got, "AK") {
			t.Errorf("URL(%q) = %q keeps the credentials", tc.in, got)
		}
	}
}
