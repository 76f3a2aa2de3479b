package server_test

import (
	"os"
	"testing"

	"github.com/hubd/hubd/internal/testutil"
)

// envTiny makes the test binary the single-user server the local spawner
// starts (testutil.TinyServer).
const envTiny = "HUBD_SERVER_TEST_TINY"

func TestMain(m *testing.M) {
	if os.Getenv(envTiny) == "1" {
		os.Exit(testutil.TinyServer())
	}
	os.Exit(m.Run())
}
