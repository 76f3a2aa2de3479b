//go:build !(linux && cgo)

package auth

import (
	"errors"
	"log/slog"

	"github.com/hubd/hubd/core/identity"
)

// Without cgo there is no libpam: hubd still builds (for hubtui, the admin
// client and pure-Go tests) but every PAM login fails with a clear cause.
func newPAMChecker(string, bool, *slog.Logger) passwordChecker { return noPAM{} }

type noPAM struct{}

func (noPAM) check(string, string) (identity.External, error) {
	return identity.External{}, newError(ErrUnavailable, msgUnavailable,
		errors.New("this hubd was built without cgo, so it cannot use PAM: rebuild it with CGO_ENABLED=1 (needs gcc and libpam0g-dev)"))
}
