package runstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ocireg-tool/ocireg-tool/config"
	"github.com/ocireg-tool/ocireg-tool/internal/safefile"
)

// GCRecord is what the last gc of a storage did (last-gc.json), for the
// registry browser. (verify records nothing: it never writes.)
type GCRecord struct {
	At time.Time `json:"at"`
	// Removed is false when gc stopped after its dry run.
	Removed   bool   `json:"removed"`
	Blobs     int    `json:"blobs"`
	Manifests int    `json:"manifests"`
	Bytes     int64  `json:"bytes"`
	Error     string `json:"error,omitempty"`
}

// PruneRecord is what the last prune of a storage did (last-prune.json),
// for info, help and the registry browser.
type PruneRecord struct {
	At time.Time `json:"at"`
	// Policy is the policy it applied, in one line.
	Policy string `json:"policy"`
	// Removed is false when prune stopped after its dry run.
	Removed bool `json:"removed"`
	// Images counts the images it looked at, Tags the tags that go (or
	// went) and Kept those that stay.
	Images int `json:"images"`
	Tags   int `json:"tags"`
	Kept   int `json:"kept"`
	// Bytes is what the sweep frees (or would free).
	Bytes int64  `json:"bytes"`
	Error string `json:"error,omitempty"`
}

// WritePruneRecord keeps r as the last prune of c's storage.
func WritePruneRecord(c *config.Config, r PruneRecord) error { return writeRecord(c, "prune", r) }

// ReadPruneRecord returns the last prune of c's storage, nil when none
// was recorded.
func ReadPruneRecord(c *config.Config) (*PruneRecord, error) {
	var r PruneRecord
	return readRecord(c, "prune", &r)
}

// recordFile is where the last outcome of op is kept.
func recordFile(c *config.Config, op string) string {
	return filepath.Join(c.Storage, "last-"+op+".json")
}

// WriteGCRecord keeps r as the last gc of c's storage.
func WriteGCRecord(c *config.Config, r GCRecord) error { return writeRecord(c, "gc", r) }

// ReadGCRecord returns the last gc of c's storage, nil when none was
// recorded.
func ReadGCRecord(c *config.Config) (*GCRecord, error) {
	var r GCRecord
	return readRecord(c, "gc", &r)
}

func writeRecord(c *config.Config, op string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = safefile.WriteAtomic(recordFile(c, op), append(data, '\n'), 0o600)
	return err
}

func readRecord[T any](c *config.Config, op string, v *T) (*T, error) {
	data, err := os.ReadFile(recordFile(c, op))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("%s: %w", recordFile(c, op), err)
	}
	return v, nil
}
