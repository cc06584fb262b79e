package tests

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ocireg-tool/ocireg-tool/internal/testtool"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
)

var timestampTagRe = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}$`)

// pushBuild writes build n of the sample image app (new content each
// time) and pushes it with timestamp, latest and arch tags; it returns
// the timestamp tag, waiting for the next second first so that every push
// gets its own.
func pushBuild(t *testing.T, e *Env, root string, n int, args ...string) Result {
	t.Helper()
	if _, err := sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64",
		Stamp: fmt.Sprintf("202601081234%02d", n)}, Latest: true}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	return e.mustRun(t, 0, append([]string{"push", "app", "--strategy", "timestamp latest arch"}, args...)...)
}

// timestampTags are the timestamp tags among tags, oldest first.
func timestampTags(tags []string) []string {
	var out []string
	for _, tag := range tags {
		if timestampTagRe.MatchString(tag) {
			out = append(out, tag)
		}
	}
	slices.Sort(out)
	return out
}

// prune: three builds pushed, the dry run lists the old tags and removes
// nothing, --yes removes them; the newest build and latest stay
// pullable, the old tags are gone, verify is clean. push --prune then
// keeps the registry at the newest build after the next push.
func TestPruneEndToEnd(t *testing.T) {
	testtool.Need(t, "skopeo")
	root := filepath.Join(t.TempDir(), "images")
	e := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	e.mustRun(t, 0, "start")
	for n := 1; n <= 3; n++ {
		pushBuild(t, e, root, n)
	}
	before := listTags(t, e, "app")
	stamps := timestampTags(before)
	if len(stamps) != 3 || len(before) != 7 {
		t.Fatalf("after three pushes: %v", before)
	}
	newest := stamps[2]

	r := e.mustRun(t, 0, "prune")
	wantOut(t, r, "prune without a policy", "No retention policy: nothing is pruned", "CONTAINER_REGISTRY_RETENTION_KEEP")

	r = e.mustRun(t, 0, "prune", "--keep", "1")
	wantOut(t, r, "dry run", "yocto/app: 4 tag(s) go, 3 stay",
		"remove "+stamps[0], "remove "+stamps[1]+"-x86_64", "keep   latest", "protected by pattern latest",
		"would free", "Dry run only: nothing was removed", "prune --yes --keep 1")
	if got := listTags(t, e, "app"); !slices.Equal(got, before) {
		t.Fatalf("the dry run changed the tags: %v, was %v", got, before)
	}

	r = e.mustRun(t, 0, "prune", "--keep", "1", "--json")
	var js struct {
		Plan struct {
			Repositories []struct {
				Name   string
				Builds []struct{ Prune bool }
			}
		}
		GC struct {
			DryRun struct{ Bytes int64 } `json:"dry_run"`
		} `json:"gc"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &js); err != nil || len(js.Plan.Repositories) != 1 || len(js.Plan.Repositories[0].Builds) != 3 || js.GC.DryRun.Bytes == 0 {
		t.Fatalf("prune --json: %v\n%s", err, r.Stdout)
	}
	if got := listTags(t, e, "app"); !slices.Equal(got, before) {
		t.Fatalf("prune --json changed the tags: %v", got)
	}

	r = e.mustRun(t, 0, "prune", "--keep", "1", "--yes")
	wantOut(t, r, "prune --yes", "Removed 4 tag(s) of 1 image(s)", "Garbage collection complete", "Pushes resume")
	want := []string{newest, newest + "-x86_64", "latest"}
	slices.Sort(want)
	if got := listTags(t, e, "app"); !slices.Equal(got, want) {
		t.Fatalf("after prune: %v, want %v", got, want)
	}
	for _, tag := range []string{"latest", newest, newest + "-x86_64"} {
		if _, err := skopeoInspect(t, e, "yocto/app:"+tag); err != nil {
			t.Errorf("%s after prune: %v", tag, err)
		}
	}
	if out, err := exec.Command("skopeo", "inspect", "--raw", "--tls-verify=false", "docker://"+e.URL+"/yocto/app:"+stamps[0]).CombinedOutput(); err == nil {
		t.Errorf("%s is still there:\n%s", stamps[0], out)
	}
	r = e.mustRun(t, 0, "verify")
	wantOut(t, r, "verify after prune", "OK: no problems found")
	r = e.mustRun(t, 0, "info")
	wantOut(t, r, "info after prune", "Retention:    off: every build kept; protected: latest", "Last prune:", "removed 4 tag(s) of 1 image(s)")
	r = e.mustRun(t, 0, "help")
	wantOut(t, r, "help after prune", "prune [<image> ...]", "Last prune: ", "removed 4 tag(s) of 1 image(s)")

	// push --prune with a policy in the environment keeps the newest.
	e.Extra["CONTAINER_REGISTRY_RETENTION_KEEP"] = "1"
	r = pushBuild(t, e, root, 4, "--prune")
	if !strings.Contains(r.Out(), "Removed 2 tag(s) of 1 image(s)") {
		t.Errorf("push --prune:\n%s", r.Out())
	}
	after := listTags(t, e, "app")
	if s := timestampTags(after); len(s) != 1 || len(after) != 3 || s[0] <= newest {
		t.Fatalf("after push --prune: %v", after)
	}
	e.mustRun(t, 0, "verify")
}

// push --prune to a registry this storage does not serve cannot prune:
// the push itself succeeds, then it fails saying why; the setting alone
// only notes it.
func TestPrunePushElsewhere(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	served := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root})
	served.mustRun(t, 0, "start")
	other := NewEnv(t, map[string]string{"DEPLOY_DIR_IMAGES": root, "CONTAINER_REGISTRY_URL": served.URL,
		"CONTAINER_REGISTRY_RETENTION_KEEP": "1"})
	if _, err := sample.WriteTree(root, []sample.Build{{Spec: sample.Spec{Name: "app", Machine: "qemux86-64", Arch: "x86_64",
		Stamp: "20260108123401"}, Latest: true}}); err != nil {
		t.Fatal(err)
	}
	r := other.Run("push", "app", "--prune")
	if r.Code != 1 || !strings.Contains(r.Out(), "Summary: 1 image(s)") || !strings.Contains(r.Out(), "cannot prune after the push") {
		t.Fatalf("push --prune elsewhere: exit %d\n%s", r.Code, r.Out())
	}
	r = other.RunEnv(map[string]string{"CONTAINER_REGISTRY_RETENTION_ON_PUSH": "1"}, "push", "app")
	if r.Code != 0 || !strings.Contains(r.Out(), "CONTAINER_REGISTRY_RETENTION_ON_PUSH ignored") {
		t.Fatalf("push with ON_PUSH elsewhere: exit %d\n%s", r.Code, r.Out())
	}
}
