//go:build linux && cgo

// The only cgo in hubd: everything that touches libpam lives in this file,
// so the rest of the tree (and hubtui) builds with CGO_ENABLED=0.

package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"

	"github.com/msteinert/pam/v2"

	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/names"
)

// pamChecker runs one PAM transaction per check against a service file in
// /etc/pam.d: authenticate, then the account checks, then optionally a
// session that is opened and closed again.
type pamChecker struct {
	service      string
	openSessions bool
	log          *slog.Logger
}

func newPAMChecker(service string, openSessions bool, log *slog.Logger) passwordChecker {
	return &pamChecker{service: service, openSessions: openSessions, log: log}
}

func (p *pamChecker) check(username, password string) (identity.External, error) {
	done := make(chan error, 1)
	go func() {
		// PAM modules may keep per-thread state (pam_loginuid, NSS modules,
		// msteinert/pam#14), so the whole transaction, End included, runs
		// on one locked OS thread. The thread is never unlocked: when the
		// goroutine returns, Go discards it instead of reusing a thread a
		// module may have changed.
		runtime.LockOSThread()
		done <- p.transaction(username, password)
	}()
	if err := <-done; err != nil {
		return identity.External{}, err
	}
	// PAM vouches for the Linux account itself; its groups are read by
	// the identity step.
	return identity.External{Method: identity.MethodPAM, Subject: username, Name: username}, nil
}

func (p *pamChecker) transaction(username, password string) error {
	conv := &conversation{username: username, password: password}
	tx, err := pam.Start(p.service, username, conv)
	if err != nil {
		return newError(ErrUnavailable, msgUnavailable, fmt.Errorf("pam_start for service %q: %w", p.service, err))
	}
	// End's status only repeats the last call's; nothing left to act on.
	defer func() { _ = tx.End() }()

	if err := tx.Authenticate(pam.DisallowNullAuthtok); err != nil {
		return conv.annotate(classifyPAM(fmt.Errorf("pam_authenticate: %w", err), false, conv.gatedBeforePassword()))
	}
	if err := tx.AcctMgmt(pam.DisallowNullAuthtok); err != nil {
		return conv.annotate(classifyPAM(fmt.Errorf("pam_acct_mgmt: %w", err), true, false))
	}
	if p.openSessions {
		p.session(tx, username, conv)
	}
	return nil
}

// session opens and immediately closes a PAM session, so session modules
// (pam_mkhomedir, pam_limits accounting, audit) see the login. Session
// modules are the flakiest part of many stacks (JupyterHub turned them off
// by default for that reason), so a failure is a warning, never a refusal.
func (p *pamChecker) session(tx *pam.Transaction, username string, conv *conversation) {
	if err := tx.OpenSession(pam.Silent); err != nil {
		p.log.Warn("PAM open_session failed; the login goes ahead without a session (set auth.open_sessions = false to stop trying)",
			"service", p.service, "user", names.Quote(username), "err", err, "pam_messages", conv.messages)
		return
	}
	if err := tx.CloseSession(pam.Silent); err != nil {
		p.log.Warn("PAM close_session failed", "service", p.service, "user", names.Quote(username), "err", err)
	}
}

// classifyPAM turns a PAM status into the domain error. passwordOK says
// the failure came after pam_authenticate succeeded; gated that the stack
// refused with a message before asking for the password.
func classifyPAM(err error, passwordOK, gated bool) *Error {
	var status pam.Error
	if !errors.As(err, &status) {
		return newError(ErrUnavailable, msgUnavailable, err)
	}
	switch status {
	case pam.ErrAuthinfoUnavail:
		// pam_unix says this when it cannot read /etc/shadow; with
		// shadow readable it means a network directory (LDAP, SSSD) is down.
		if ok, why := CanReadShadow(); !ok {
			return newError(ErrCannotVerify, msgCannotVerify, fmt.Errorf("%s: %w", why, err))
		}
		return newError(ErrUnavailable, msgUnavailable, err)
	case pam.ErrAcctExpired, pam.ErrCredExpired:
		return newError(ErrAccountUnavailable, msgAccountExpired, err)
	case pam.ErrNewAuthtokReqd, pam.ErrAuthtokExpired:
		return newError(ErrAccountUnavailable, msgPasswordExpired, err)
	case pam.ErrPermDenied:
		return newError(ErrAccountUnavailable, msgAccountRefused, err)
	case pam.ErrUserUnknown:
		return newError(ErrInvalidCredentials, msgInvalidCredentials, err)
	case pam.ErrAuth, pam.ErrCredInsufficient, pam.ErrMaxtries:
		switch {
		case passwordOK:
			// An account module refused a user whose password was right.
			return newError(ErrAccountUnavailable, msgAccountRefused, err)
		case gated:
			// pam_nologin: it refuses every non-root user alike, so
			// saying so tells nothing about the account.
			return newError(ErrAccountUnavailable, msgLoginsDisabled, err)
		}
		return newError(ErrInvalidCredentials, msgInvalidCredentials, err)
	}
	return newError(ErrUnavailable, msgUnavailable, err)
}

// maxMessages bounds what a chatty stack (pam_motd) can make us keep.
const maxMessages = 8

// conversation answers PAM's prompts from the login form.
type conversation struct {
	username, password string
	askedPassword      bool
	messages           []string
}

func (c *conversation) RespondPAM(style pam.Style, msg string) (string, error) {
	switch style {
	case pam.PromptEchoOff:
		c.askedPassword = true
		return c.password, nil
	case pam.PromptEchoOn:
		// Only a "login:" style prompt echoes; the form's user name answers it.
		return c.username, nil
	case pam.ErrorMsg, pam.TextInfo:
		if len(c.messages) < maxMessages {
			c.messages = append(c.messages, names.Quote(msg))
		}
		return "", nil
	}
	return "", fmt.Errorf("PAM conversation style %d is not supported by hubd", style)
}

// gatedBeforePassword: the stack refused with a message without ever
// asking for the password, as pam_nologin does (it sends the nologin text,
// even an empty one). pam_unix prompts for unknown users too, so with the
// shipped stack this never tells unknown users apart from wrong passwords.
func (c *conversation) gatedBeforePassword() bool {
	return !c.askedPassword && len(c.messages) > 0
}

// annotate adds what the stack said (e.g. the text of /etc/nologin) to the
// cause, for the log only: the login page shows e.Public.
func (c *conversation) annotate(e *Error) *Error {
	if len(c.messages) > 0 {
		e.Err = fmt.Errorf("%w (PAM said %s)", e.Err, strings.Join(c.messages, ", "))
	}
	return e
}
