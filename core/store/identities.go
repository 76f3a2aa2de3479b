package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Errors of BindLogin, both wrapping ErrConflict.
var (
	// ErrNameBound: the user name belongs to another identity.
	ErrNameBound = fmt.Errorf("%w: the user name belongs to another identity", ErrConflict)
	// ErrIdentityBound: the identity belongs to another user name.
	ErrIdentityBound = fmt.Errorf("%w: the identity belongs to another user", ErrConflict)
)

// Login is one admitted login: the hub user it is for and the identity
// (login method and subject) it was vouched for by.
type Login struct {
	Name string
	// AdminRule names the login rule that makes the user an admin, ""
	// when none does.
	AdminRule string
	Account   string // AccountLinux or AccountDynamic
	Method    string
	Subject   string
	Email     string
}

// BindLogin records a login in one transaction: it creates the user when
// missing, binds the identity to it on the user's first login, and sets
// the admin rule (the user is an admin by it, or by a grant by hand), the
// account kind and the last login. A user has one
// identity: a name already bound to another identity gives ErrNameBound,
// and an identity already bound to another name ErrIdentityBound, so two
// people are never merged into one user. A user without an identity
// (created through the API) is bound by their first login.
func (s *Store) BindLogin(ctx context.Context, l Login) (User, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := FormatTime(s.now())
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT u.name FROM identities i JOIN users u ON u.id = i.user_id WHERE i.method = ? AND i.subject = ?`,
			l.Method, l.Subject).Scan(&owner)
		switch {
		case err == nil && owner != l.Name:
			return fmt.Errorf("%w (it is %q's)", ErrIdentityBound, owner)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, l.Name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			res, err := tx.ExecContext(ctx, `INSERT INTO users (name, admin, admin_rule, created, cookie_id, account) VALUES (?, ?, ?, ?, ?, ?)`,
				l.Name, l.AdminRule != "", l.AdminRule, now, RandomID(16), l.Account)
			if err != nil {
				return err
			}
			if id, err = res.LastInsertId(); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		var method, subject string
		err = tx.QueryRowContext(ctx, `SELECT method, subject FROM identities WHERE user_id = ?`, id).Scan(&method, &subject)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO identities (user_id, method, subject, email, created, last_login) VALUES (?, ?, ?, ?, ?, ?)`,
				id, l.Method, l.Subject, l.Email, now, now); err != nil {
				return err
			}
		case err != nil:
			return err
		case method != l.Method || subject != l.Subject:
			return fmt.Errorf("%w (a %s identity)", ErrNameBound, method)
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE identities SET email = ?, last_login = ? WHERE user_id = ?`, l.Email, now, id); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET admin = (admin_grant OR ? <> ''), admin_rule = ?, account = ? WHERE id = ?`,
			l.AdminRule, l.AdminRule, l.Account, id)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return s.UserByID(ctx, id)
}

// Unbind removes the identity a user is bound to and says which login
// method it was (ErrNotFound when the user has none), so the next login
// that maps to the name, through any method, binds it again: how an admin
// moves a user from one login method to another. The user keeps their
// servers, tokens and groups.
func (s *Store) Unbind(ctx context.Context, userID int64) (method string, err error) {
	err = s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT method FROM identities WHERE user_id = ?`, userID).Scan(&method)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM identities WHERE user_id = ?`, userID)
		return err
	})
	return method, err
}
