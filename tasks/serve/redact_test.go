package serve

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// Upload state tokens never reach the log, in the message or any field;
// the rest of the URI stays.
func TestRedactUploadState(t *testing.T) {
	var buf bytes.Buffer
	l := logrus.New()
	l.SetOutput(&buf)
	l.SetFormatter(logFormatter("json"))
	l.ReplaceHooks(fieldHooks(map[string]any{"service": "ocireg-tool"}))
	uri := "/v2/yocto/a/blobs/uploads/0123?_state=c2VjcmV0&digest=sha256:abcd"
	l.WithFields(logrus.Fields{
		"http.request.uri": uri,
		"err":              errors.New("PUT " + uri + ": unexpected EOF"),
		"n":                42,
	}).Info("response completed for ?_state=c2VjcmV0")
	out := buf.String()
	if strings.Contains(out, "c2VjcmV0") {
		t.Errorf("the state token is in the log: %s", out)
	}
	for _, want := range []string{`?_state=REDACTED&digest=sha256:abcd"`, `"n":42`, `"service":"ocireg-tool"`, `response completed for ?_state=REDACTED"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s: %s", want, out)
		}
	}
}
