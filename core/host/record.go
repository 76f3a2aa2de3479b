package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/hubd/hubd/internal/fsutil"
)

// Record is what setup remembers beside the configuration: the names it
// was run with, so doctor and uninstall find the same files, and what it
// created rather than adopted, so uninstall never deletes an account or a
// directory that was there before.
type Record struct {
	Name    string `json:"name"`
	HubUser string `json:"hub_user"`
	// Created* list, in creation order, what setup made.
	CreatedUsers  []string `json:"created_users,omitempty"`
	CreatedGroups []string `json:"created_groups,omitempty"`
	CreatedDirs   []string `json:"created_dirs,omitempty"`
	// CreatedConfig is true when setup wrote the configuration file.
	CreatedConfig bool `json:"created_config,omitempty"`
	// InstalledHelper is true when setup wrote spawner.helper_path.
	InstalledHelper bool `json:"installed_helper,omitempty"`
	// Packaged is true when the hubd Debian package ran setup.
	Packaged bool `json:"packaged,omitempty"`
}

func (r *Record) add(list *[]string, item string) {
	if !slices.Contains(*list, item) {
		*list = append(*list, item)
	}
}

// LoadRecord reads the record at path; a missing file is an empty record.
func LoadRecord(path string) (Record, error) {
	var r Record
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read setup record: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("setup record %s is damaged (%w): fix or remove it, then run `hubd setup` again", path, err)
	}
	return r, nil
}

func (r Record) encode() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return append(b, '\n')
}

// save writes the record when it differs from what is on disk.
func (r Record) save(path string) (changed bool, err error) {
	data := r.encode()
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return false, fmt.Errorf("write setup record: %w", err)
	}
	return true, nil
}
