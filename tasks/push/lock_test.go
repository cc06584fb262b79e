package push

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/generator"
	"github.com/ocireg-tool/ocireg-tool/internal/testreg"
	"github.com/ocireg-tool/ocireg-tool/tasks/events"
	"github.com/ocireg-tool/ocireg-tool/tasks/sample"
	"github.com/ocireg-tool/ocireg-tool/tasks/taglock"
)

// A push to replicas of a shared backend whose redis is named only in
// registry-config.yml (CONTAINER_REGISTRY_REDIS unset) merges its tags
// under that redis's lock, the redis serve uses, and so skips the
// read-back after a pause.
func TestPushLocksInRedisOfRegistryConfig(t *testing.T) {
	mr := miniredis.RunT(t)
	reg := testreg.New(t)
	root := t.TempDir()
	sample.WriteTree(root, sample.DefaultBuilds())
	c, err := config.FromVars(config.Vars{
		"CONTAINER_REGISTRY_URL":      reg.Host,
		"CONTAINER_REGISTRY_INSECURE": "1",
		"CONTAINER_REGISTRY_STORAGE":  t.TempDir(),
		"CONTAINER_REGISTRY_BACKEND":  "s3://bucket?endpoint=http://127.0.0.1:1",
		"DEPLOY_DIR_IMAGES":           root,
		"TOPDIR":                      t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := generator.RegistryConfigYAML(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.RegistryConfig(), append(data, "redis:\n  addrs: ["+mr.Addr()+"]\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	o := Options{Strategy: "latest", Events: &events.Recorder{}, Now: time.Now()}
	o.defaults()
	p, err := newPushRun(context.Background(), target(t, c), o, &TagSet{Tags: []string{"latest"}}, &Summary{})
	if err != nil {
		t.Fatal(err)
	}
	if p.lock.Kind() != taglock.Redis {
		t.Fatalf("push lock %s, want redis", p.lock.Kind())
	}
	p.lock.Close()
	sum, err := Push(context.Background(), target(t, c), o)
	if err != nil || sum.Tags == 0 {
		t.Fatalf("push: %+v %v", sum, err)
	}
	if n := mr.CommandCount(); n == 0 {
		t.Fatal("the push sent redis no command")
	}
}
