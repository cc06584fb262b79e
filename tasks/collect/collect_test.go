package collect

import (
	"context"
	"slices"
	"testing"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/ocireg-tool/ocireg-tool/internal/testcfg"
	"github.com/ocireg-tool/ocireg-tool/tasks/replica"
)

// Prepare runs once per sweep, the dry run's first; its change (dryRun
// false) only with every writer held, and never after a "no" or a dry run
// nobody could confirm.
func TestPrepareOrder(t *testing.T) {
	c := testcfg.WithYAML(t, nil, "")
	cfg := &configuration.Configuration{}
	for _, tc := range []struct {
		name    string
		o       Options
		want    []string
		removed bool
	}{
		{"yes", Options{Yes: true}, []string{"dry held", "change held"}, true},
		{"confirmed", Options{Confirm: func() bool { return true }}, []string{"dry", "change held"}, true},
		{"declined", Options{Confirm: func() bool { return false }}, []string{"dry"}, false},
		{"nobody to ask", Options{}, []string{"dry"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := inmemory.New()
			var calls []string
			holding := false
			o := tc.o
			o.OnHeld = func(*replica.Hold) { holding = true }
			o.OnResumed = func() { holding = false }
			o.Prepare = func(_ context.Context, d driver.StorageDriver, dryRun bool) (driver.StorageDriver, error) {
				call := map[bool]string{true: "dry", false: "change"}[dryRun]
				if holding {
					call += " held"
				}
				calls = append(calls, call)
				return d, nil
			}
			res, err := Run(context.Background(), c, cfg, d, o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(calls, tc.want) {
				t.Errorf("Prepare calls %v, want %v", calls, tc.want)
			}
			if (res.Removed != nil) != tc.removed || holding {
				t.Errorf("removed %v, still holding %v", res.Removed, holding)
			}
		})
	}
}
