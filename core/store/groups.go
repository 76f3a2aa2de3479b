package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Group is a hub group: a named set of users with JSON properties. Groups
// grant roles and may be named in the allow and admin rules.
type Group struct {
	ID         int64
	Name       string
	Properties string // JSON object
	Users      []string
}

// ListGroups returns one page of groups ordered by name, with their
// members, and how many there are in all.
func (s *Store) ListGroups(ctx context.Context, offset, limit int) ([]Group, int, error) {
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM groups`).Scan(&total); err != nil {
		return nil, 0, mapErr(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, properties FROM groups ORDER BY name LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, 0, mapErr(err)
	}
	var out []Group
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.ID, &g.Name, &g.Properties); err != nil {
			rows.Close()
			return nil, 0, mapErr(err)
		}
		out = append(out, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, mapErr(err)
	}
	for i := range out {
		if out[i].Users, err = s.groupMembers(ctx, out[i].ID); err != nil {
			return nil, 0, err
		}
	}
	return out, total, nil
}

// GroupByName returns a group with its members, or ErrNotFound.
func (s *Store) GroupByName(ctx context.Context, name string) (Group, error) {
	var g Group
	err := s.db.QueryRowContext(ctx, `SELECT id, name, properties FROM groups WHERE name = ?`, name).Scan(&g.ID, &g.Name, &g.Properties)
	if err != nil {
		return Group{}, mapErr(err)
	}
	g.Users, err = s.groupMembers(ctx, g.ID)
	return g, err
}

func (s *Store) groupMembers(ctx context.Context, groupID int64) ([]string, error) {
	return s.names(ctx, `SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name`, groupID)
}

// GroupsOf lists the names of the groups a user belongs to.
func (s *Store) GroupsOf(ctx context.Context, userID int64) ([]string, error) {
	return s.names(ctx, `SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.name`, userID)
}

// names runs a query of one text column and returns its values (an empty
// list, never nil, when there are none).
func (s *Store) names(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, mapErr(err)
		}
		out = append(out, n)
	}
	return out, mapErr(rows.Err())
}

// GroupsOfName lists the groups of a user by name; none for a user the
// hub does not know yet.
func (s *Store) GroupsOfName(ctx context.Context, name string) ([]string, error) {
	u, err := s.UserByName(ctx, name)
	if err == ErrNotFound {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return s.GroupsOf(ctx, u.ID)
}

// CreateGroup adds a group with its first members; ErrConflict when the
// name is taken, ErrNotFound (naming the user) when a member is unknown.
func (s *Store) CreateGroup(ctx context.Context, name string, users []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO groups (name, created) VALUES (?, ?)`, name, FormatTime(s.now()))
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		return addMembers(ctx, tx, id, users)
	})
}

// DeleteGroup removes a group; ErrNotFound when there is none.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `DELETE FROM groups WHERE name = ?`, name))
	})
}

// AddGroupMembers adds users to a group (already members are fine).
func (s *Store) AddGroupMembers(ctx context.Context, group string, users []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		return addMembers(ctx, tx, id, users)
	})
}

// RemoveGroupMembers removes users from a group (non-members are fine).
func (s *Store) RemoveGroupMembers(ctx context.Context, group string, users []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := groupID(ctx, tx, group)
		if err != nil {
			return err
		}
		for _, u := range users {
			if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = ? AND user_id = (SELECT id FROM users WHERE name = ?)`, id, u); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetGroupProperties replaces a group's properties (a JSON object).
func (s *Store) SetGroupProperties(ctx context.Context, group, properties string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `UPDATE groups SET properties = ? WHERE name = ?`, properties, group))
	})
}

func groupID(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM groups WHERE name = ?`, name).Scan(&id)
	return id, err
}

// MissingUserError names a user a group change referred to who does not
// exist; it matches ErrNotFound.
type MissingUserError struct{ Name string }

func (e *MissingUserError) Error() string { return fmt.Sprintf("no such user: %s", e.Name) }

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *MissingUserError) Is(target error) bool { return target == ErrNotFound }

func addMembers(ctx context.Context, tx *sql.Tx, groupID int64, users []string) error {
	for _, u := range users {
		var uid int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, u).Scan(&uid); err != nil {
			if err == sql.ErrNoRows {
				return &MissingUserError{Name: strings.TrimSpace(u)}
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)`, groupID, uid); err != nil {
			return err
		}
	}
	return nil
}
