// Package auth checks passwords typed into the hub's login form (PAM) and
// says whose they are: an identity.External. Who that person is on the
// hub (name mapping, allow and admin rules, the account) is decided
// afterwards by core/identity, for every login method alike.
//
// A password check goes through these steps, in this order:
//
//  1. Normalise and check the name (names.Normalize, names.Check); refuse
//     root and impossible passwords. None of this depends on whether the
//     account exists, so answering early gives nothing away.
//  2. The throttle: too many recent failures from this address, or for
//     this user from this address, are refused without asking PAM.
//  3. The worker pool: at most auth.pam_workers PAM transactions at once,
//     and one address holds only a small share of them.
//  4. PAM: pam_authenticate (null passwords refused), then pam_acct_mgmt, so
//     an expired or refused account fails even with the right password;
//     optionally a session, whose failure only warns.
//
// Then identity.Admitter.Admit applies the policy: uid >= auth.min_uid,
// never uid 0, member of the allowed group (primary group included) or
// listed, and admin by group or list.
//
// Policy runs after PAM on purpose. Deciding "not allowed" first would need
// an account lookup, and answering quickly for "exists but not allowed"
// and slowly for "wrong password" would tell a stranger which accounts
// exist. Done this way, anyone without the right password gets the same
// "wrong user name or password", and only a person who knows the password
// learns that they are not a member of the group.
//
// pam_unix itself answers an unknown or locked account at once but a wrong
// password only after hashing it, so wrong-credential answers are held
// back to the typical duration of a successful check. The wait happens
// after the PAM worker is released, so it costs no pool capacity.
package auth

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/identity"
	"github.com/hubd/hubd/core/loginerr"
	"github.com/hubd/hubd/core/metrics"
	"github.com/hubd/hubd/core/names"
)

// Password is a login method that checks a name and password typed into
// the hub's login form (PAM; LDAP). The web layer hands what it returns
// to identity.Admitter.Admit; tests there can use a fake.
type Password interface {
	// Check checks a user name and password typed by a person at
	// clientAddr (an IP address, with or without a port) and returns who
	// the method says they are. Failures are *Error values; see the Err*
	// kinds.
	Check(ctx context.Context, username, password, clientAddr string) (identity.External, error)
}

// passwordChecker is one conversation with the password source (PAM:
// authenticate + account check). It returns the identity or an *Error.
type passwordChecker interface {
	check(username, password string) (identity.External, error)
}

// Login is a Password method: the throttle, the bounded worker pool and
// the timing padding around a passwordChecker (PAM's, the LDAP bind's or
// both, from New).
type Login struct {
	log      *slog.Logger
	checker  passwordChecker
	pool     *pool
	throttle *throttle
	metrics  *metrics.Metrics
	// typicalPAM is a moving average of successful PAM checks, in ns.
	typicalPAM atomic.Int64
}

var _ Password = (*Login)(nil)

// New builds the password form's method from validated config
// (config.Validate): PAM, the LDAP bind, or both, in that order (see
// firstOf), behind one throttle and worker pool. The pool has
// auth.pam_workers workers, or auth.ldap.connections with LDAP alone. It
// warns right away if PAM is on and this process cannot check other
// users' passwords, since then every PAM login will fail. m (may be nil)
// gets the time logins wait for a worker.
func New(cfg config.Auth, logger *slog.Logger, m *metrics.Metrics) (*Login, error) {
	logger = logger.With("component", "auth")
	var checkers firstOf
	if cfg.HasMethod(config.MethodPAM) || !cfg.HasMethod(config.MethodLDAP) {
		if ok, why := CanReadShadow(); !ok {
			logger.Warn("PAM logins of other users will fail", "why", why)
		}
		checkers = append(checkers, newPAMChecker(cfg.PAMService, cfg.OpenSessions, logger))
	} else {
		cfg.PAMWorkers = cfg.LDAP.Connections
	}
	if cfg.HasMethod(config.MethodLDAP) {
		c, err := newLDAPChecker(cfg.LDAP)
		if err != nil {
			return nil, err
		}
		checkers = append(checkers, c)
	}
	var checker passwordChecker = checkers
	if len(checkers) == 1 {
		checker = checkers[0]
	}
	l, err := newLogin(cfg, logger, checker, time.Now)
	if l != nil {
		l.metrics = m
	}
	return l, err
}

// PoolStats is the worker pool at this moment, for the metrics.
func (l *Login) PoolStats() metrics.PoolStats {
	w, b, q := l.pool.stats()
	return metrics.PoolStats{Workers: w, Busy: b, Waiting: q}
}

// firstOf checks a password with each checker in turn, for a login form
// that serves several sources (local accounts through PAM, then the
// directory): the first that accepts it wins. When none does, the answer
// is the most telling failure: an account that may not log in, then a
// source that could not check (a directory that is down may hold the
// account), then wrong credentials. Checking local accounts first means
// a directory that hangs never slows a local user's login.
type firstOf []passwordChecker

func (f firstOf) check(username, password string) (identity.External, error) {
	var worst *Error
	for _, c := range f {
		ext, err := c.check(username, password)
		if err == nil {
			return ext, nil
		}
		if e := asError(err); worst == nil || severity(e.Kind) > severity(worst.Kind) {
			worst = e
		}
	}
	return identity.External{}, worst
}

// severity orders failures for firstOf.
func severity(kind error) int {
	switch kind {
	case ErrInvalidCredentials:
		return 0
	case ErrAccountUnavailable:
		return 2
	}
	return 1
}

func newLogin(cfg config.Auth, logger *slog.Logger, checker passwordChecker, now func() time.Time) (*Login, error) {
	if cfg.PAMWorkers < 1 || cfg.FailuresPerUser < 1 || cfg.FailuresPerAddress < 1 || cfg.FailureWindow <= 0 {
		return nil, fmt.Errorf("auth settings not validated: pam_workers %d, failures_per_user %d, failures_per_address %d must be at least 1 and failure_window %s positive",
			cfg.PAMWorkers, cfg.FailuresPerUser, cfg.FailuresPerAddress, cfg.FailureWindow.D())
	}
	return &Login{
		log:      logger,
		checker:  checker,
		pool:     newPool(cfg.PAMWorkers),
		throttle: newThrottle(now, cfg.FailureWindow.D(), cfg.FailuresPerUser, cfg.FailuresPerAddress),
	}, nil
}

// Check implements Password. When ctx ends while PAM is running, Check
// returns ErrBusy at once, but the transaction finishes in the background:
// it keeps its worker until PAM returns, and a wrong password still counts
// in the throttle, so hanging up early buys an attacker nothing.
func (l *Login) Check(ctx context.Context, username, password, clientAddr string) (identity.External, error) {
	name := names.Normalize(username)
	addr := addrKey(clientAddr)
	if e := precheck(name, password); e != nil {
		return l.refuse(name, addr, e)
	}
	if wait := l.throttle.wait(name, addr); wait > 0 {
		return l.refuse(name, addr, throttled(wait))
	}
	queued := time.Now()
	release, err := l.pool.acquire(ctx, addr)
	if err != nil {
		return l.refuse(name, addr, newError(ErrBusy, msgBusy, err))
	}
	l.metrics.PAMWait(time.Since(queued))
	type outcome struct {
		ext identity.External
		pad time.Duration
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		u, pad, err := l.verify(name, password, addr)
		release()
		l.report(name, addr, err)
		done <- outcome{u, pad, err}
	}()
	select {
	case o := <-done:
		if o.pad > 0 {
			timer := time.NewTimer(o.pad)
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		return o.ext, o.err
	case <-ctx.Done():
		l.log.Debug("client stopped waiting; the PAM check finishes without it", "user", names.Quote(name), "addr", names.Quote(addr))
		return identity.External{}, newError(ErrBusy, msgBusy, ctx.Err())
	}
}

// verify runs on a pool worker: throttle again (this attempt may have
// queued behind failures from the same address), then PAM. pad is how
// much longer a wrong-credential answer should wait to look like a
// checked password.
func (l *Login) verify(name, password, addr string) (ext identity.External, pad time.Duration, err error) {
	if wait := l.throttle.wait(name, addr); wait > 0 {
		return identity.External{}, 0, throttled(wait)
	}
	start := time.Now()
	ext, err = l.checker.check(name, password)
	if err != nil {
		e := asError(err)
		if e.Kind == ErrInvalidCredentials {
			l.throttle.fail(name, addr)
			pad = time.Duration(l.typicalPAM.Load()) - time.Since(start)
		}
		return identity.External{}, pad, e
	}
	l.recordPAM(time.Since(start))
	l.throttle.succeed(name, addr)
	return ext, 0, nil
}

// recordPAM folds one successful check's duration into the moving average
// (weight 1/8). Concurrent updates may drop a sample; that is harmless.
func (l *Login) recordPAM(took time.Duration) {
	old := time.Duration(l.typicalPAM.Load())
	if old == 0 {
		old = took
	}
	l.typicalPAM.Store(int64(old + (took-old)/8))
}

func (l *Login) refuse(name, addr string, e *Error) (identity.External, error) {
	l.report(name, addr, e)
	return identity.External{}, e
}

// report logs the outcome of one attempt. Names and addresses come from
// the client, so they are quoted: no forged log lines, no 1 MB entries.
func (l *Login) report(name, addr string, err error) {
	log := l.log.With("user", names.Quote(name), "addr", names.Quote(addr))
	if err == nil {
		log.Info("password accepted")
		return
	}
	e := asError(err)
	switch e.Kind {
	case ErrCannotVerify, ErrUnavailable:
		log.Error("login failed because of a problem on the hub", "outcome", e.Kind.Error(), "err", e.Err)
	case ErrThrottled:
		log.Warn("login refused by the throttle", "outcome", e.Kind.Error(), "retry_after", e.RetryAfter)
	default:
		log.Info("login refused", "outcome", e.Kind.Error(), "err", e.Err)
	}
}

// asError makes any error an *Error; unexpected ones mean the service failed.
func asError(err error) *Error {
	return loginerr.As(err, ErrUnavailable, msgUnavailable)
}
