package tests

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The server is SIGKILLed during a manifest PUT that carries a subject,
// once after it recorded the referrer and before it stored the manifest,
// once after it stored the manifest and before it answered. After start
// the referrers list holds exactly the stored manifests, verify is clean
// (a record left by the unfinished PUT is counted, gc removes it), every
// tag still names its digest, and the same PUT then completes.
func TestFaultKillServerDuringReferrerPut(t *testing.T) {
	for i, point := range []string{"referrer-recorded", "referrer-stored"} {
		t.Run(point, func(t *testing.T) {
			e := NewEnv(t, nil)
			env, marker := pauseAt(t, point)
			e.mustRun(t, 0, "start")
			r := e.regHTTP(t)
			const repo = "yocto/fault-refs"
			subj := e.pushSubject(t, repo, "v1")
			old := r.putArtifact(t, repo, artifact(subj, "application/spdx+json", "before"), subj.Digest)
			before := e.snapshot(t)
			e.mustRun(t, 0, "stop")
			if res := e.RunEnv(env, "start"); res.Code != 0 {
				t.Fatalf("start with the hook armed: %s", res.Out())
			}

			body := artifact(subj, "text/plain", "during the crash")
			dgst := digestOf(body)
			done := make(chan error, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPut, r.base+"/v2/"+repo+"/manifests/"+dgst, bytes.NewReader(body))
				req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
				resp, err := r.client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			poll(t, "the server to reach "+point, 30*time.Second, nil, func() bool { return exists(marker) })
			e.killServer(t)
			if err := <-done; err == nil {
				t.Fatalf("the PUT succeeded although the server died at %s", point)
			}

			e.recovered(t, point, before)
			stored := false
			if resp, _ := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+dgst, nil, "", false); resp.StatusCode == http.StatusOK {
				stored = true
			}
			if stored != (i == 1) {
				t.Errorf("manifest stored after SIGKILL at %s: %v", point, stored)
			}
			want := map[string]string{old.Digest.String(): "application/spdx+json"}
			if stored {
				want[dgst] = "text/plain"
			}
			sameSet(t, "after the crash", e.referrerSet(t, repo, subj.Digest), want)
			if !stored {
				v := e.mustRun(t, 0, "verify")
				wantOut(t, v, "verify with the record of the unfinished PUT", "2 referrer record(s), 1 of manifests not stored")
				e.mustRun(t, 0, "gc", "--yes")
				v = e.mustRun(t, 0, "verify")
				if !strings.Contains(v.Stdout, "1 referrer record(s)\n") {
					t.Errorf("gc left the record of the unfinished PUT:\n%s", v.Out())
				}
			}

			r.putArtifact(t, repo, body, subj.Digest)
			want[dgst] = "text/plain"
			sameSet(t, "after the PUT again", e.referrerSet(t, repo, subj.Digest), want)
			e.mustRun(t, 0, "verify")
		})
	}
}
