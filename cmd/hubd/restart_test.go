package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/upgrade"
)

// A restart into a hubd that cannot serve the database would leave no hub
// at all; it is refused (the running one keeps serving) unless the new one
// upgrades the schema itself.
func TestRestartRefusesABinaryThatNeedsASchemaUpgrade(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	for _, c := range []struct {
		fixture string
		auto    bool
		refused bool
	}{{"schema-v1.sqlite", false, true}, {"schema-v1.sqlite", true, false}, {fmt.Sprintf("schema-v%d.sqlite", upgrade.Latest()), false, false}, {"", false, false}} {
		cfg.Data.DB = filepath.Join(t.TempDir(), "hubd.sqlite")
		cfg.Hub.AutoUpgradeDB = c.auto
		if c.fixture != "" {
			data, err := os.ReadFile("../../upgrade/testdata/" + c.fixture)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg.Data.DB, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		err := canServe(ctx, cfg)
		if refused := err != nil; refused != c.refused || (refused && !strings.Contains(err.Error(), "hubd upgrade-db")) {
			t.Errorf("%s, auto_upgrade_db %v: %v; want refused %v", c.fixture, c.auto, err, c.refused)
		}
	}
}
