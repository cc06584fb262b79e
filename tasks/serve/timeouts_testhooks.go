//go:build ocireg_testhooks

package serve

import (
	"os"
	"strings"
	"time"
)

// serverTimeouts are DefaultTimeouts with TimeoutsEnv applied.
func serverTimeouts() Timeouts {
	t := DefaultTimeouts
	for _, kv := range strings.Split(os.Getenv(TimeoutsEnv), ",") {
		k, v, _ := strings.Cut(kv, "=")
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			continue
		}
		switch k {
		case "idle":
			t.Idle = d
		case "header":
			t.Header = d
		case "stall":
			t.Stall = d
		}
	}
	return t
}
