package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// User is a row of users.
type User struct {
	ID   int64
	Name string
	// Admin is what every check reads: AdminGrant or AdminRule != "".
	Admin bool
	// AdminGrant is an admin flag set by hand (hubtui, hubd user admin,
	// the REST API); it survives logins.
	AdminGrant bool
	// AdminRule names the login rule that made the user an admin at their
	// last login ("" when none did); each login sets it again.
	AdminRule    string
	Created      time.Time
	LastActivity time.Time
	// CookieID changes to log a user out everywhere.
	CookieID string
	// Account is what the user's servers run as: AccountLinux (the Linux
	// account of the same name) or AccountDynamic (a systemd dynamic user).
	Account string
	// Method is the login method of the user's identity ("" before the
	// first login of a user created through the API).
	Method string
}

// Kinds of User.Account.
const (
	AccountLinux   = "linux"
	AccountDynamic = "dynamic"
)

// userCols are the columns scanUser reads, from users aliased as u.
const userCols = `u.id, u.name, u.admin, u.admin_grant, u.admin_rule, u.created, u.last_activity, u.cookie_id, u.account,
	coalesce((SELECT i.method FROM identities i WHERE i.user_id = u.id), '')`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, last sql.NullString
	if err := sc.Scan(&u.ID, &u.Name, &u.Admin, &u.AdminGrant, &u.AdminRule, &created, &last, &u.CookieID, &u.Account, &u.Method); err != nil {
		return User{}, err
	}
	u.Created, u.LastActivity = parseTime(created), parseTime(last)
	return u, nil
}

// RandomID returns n random bytes as hex (session ids, cookie ids).
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateUser adds a user, an admin by hand when admin is set;
// ErrConflict when the name is taken.
func (s *Store) CreateUser(ctx context.Context, name string, admin bool) (User, error) {
	u := User{Name: name, Admin: admin, AdminGrant: admin, Created: s.now().UTC(), CookieID: RandomID(16), Account: AccountLinux}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, admin, admin_grant, created, cookie_id) VALUES (?, ?, ?, ?, ?)`,
			u.Name, u.Admin, u.AdminGrant, FormatTime(u.Created), u.CookieID)
		if err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		}
		u.ID, err = res.LastInsertId()
		return err
	})
	return u, err
}

// EnsureUser returns the user, creating it when missing, and grants or
// revokes admin by hand as SetAdmin does.
func (s *Store) EnsureUser(ctx context.Context, name string, admin bool) (User, error) {
	u, err := s.UserByName(ctx, name)
	if err == ErrNotFound {
		u, err = s.CreateUser(ctx, name, admin)
		if err == nil || !isConflict(err) {
			return u, err
		}
		u, err = s.UserByName(ctx, name)
	}
	if err != nil {
		return User{}, err
	}
	if u.Admin != admin || u.AdminGrant != admin {
		if _, err := s.SetAdmin(ctx, name, admin); err != nil {
			return User{}, err
		}
		return s.UserByName(ctx, name)
	}
	return u, nil
}

// UserByName returns the named user or ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.name = ?`, name))
	return u, mapErr(err)
}

// UserByID returns the user or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.id = ?`, id))
	return u, mapErr(err)
}

// SetAdmin grants (admin) or revokes admin by hand and returns the user
// as it was before; ErrNotFound when the user is unknown. A grant
// survives logins. A revocation takes effect at once, also for an admin
// the login rules made one (AdminRule of the returned user): those rules
// decide again at the user's next login.
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) (User, error) {
	var before User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if before, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.name = ?`, name)); err != nil {
			return err
		}
		if admin {
			_, err = tx.ExecContext(ctx, `UPDATE users SET admin = 1, admin_grant = 1 WHERE id = ?`, before.ID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE users SET admin = 0, admin_grant = 0, admin_rule = '' WHERE id = ?`, before.ID)
		}
		return err
	})
	return before, mapErr(err)
}

// DeleteUser removes a user with its servers, tokens and sessions.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name))
	})
}

// TouchUser moves last_activity forward to t (never back).
func (s *Store) TouchUser(ctx context.Context, id int64, t time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE users SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)`,
			FormatTime(t), id, FormatTime(t))
		return err
	})
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, mapErr(err)
}

func expectOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func isConflict(err error) bool {
	return errors.Is(err, ErrConflict)
}
