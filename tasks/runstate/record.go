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
