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
	ID           int64
	Name         string
	Admin        bool
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
const userCols = `u.id, u.name, u.admin, u.created, u.last_activity, u.cookie_id, u.account,
	coalesce((SELECT i.method FROM identities i WHERE i.user_id = u.id), '')`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, last sql.NullString
	if err := sc.Scan(&u.ID, &u.Name, &u.Admin, &created, &last, &u.CookieID, &u.Account, &u.Method); err != nil {
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

// CreateUser adds a user; ErrConflict when the name is taken.
func (s *Store) CreateUser(ctx context.Context, name string, admin bool) (User, error) {
	u := User{Name: name, Admin: admin, Created: s.now().UTC(), CookieID: RandomID(16), Account: AccountLinux}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, admin, created, cookie_id) VALUES (?, ?, ?, ?)`,
			u.Name, u.Admin, FormatTime(u.Created), u.CookieID)
		if err != nil {
			return fmt.Errorf("create user %s: %w", name, err)
		}
		u.ID, err = res.LastInsertId()
		return err
	})
	return u, err
}

// EnsureUser returns the user, creating it when missing, and sets the
// admin flag to admin (the admin group decides it on each login).
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
	if u.Admin != admin {
		if err := s.SetAdmin(ctx, name, admin); err != nil {
			return User{}, err
		}
		u.Admin = admin
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

// SetAdmin changes the admin flag; ErrNotFound when the user is unknown.
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `UPDATE users SET admin = ? WHERE name = ?`, admin, name))
	})
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
