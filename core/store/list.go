package store

import (
	"context"
	"strings"
)

// UserFilter selects users for the users list. State is "", "active",
// "ready" or "inactive" (JupyterHub's meanings: active = a server starting,
// running or stopping; ready = running; inactive = no active server).
type UserFilter struct {
	State      string
	NameFilter string // case-insensitive substring
	Offset     int
	Limit      int
}

// ListUsers returns one page of users ordered by id and the total that
// match the filter.
func (s *Store) ListUsers(ctx context.Context, f UserFilter) ([]User, int, error) {
	where := []string{"1=1"}
	var args []any
	switch f.State {
	case "active":
		where = append(where, `EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state IN ('starting', 'running', 'stopping'))`)
	case "ready":
		where = append(where, `EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state = 'running')`)
	case "inactive":
		where = append(where, `NOT EXISTS (SELECT 1 FROM servers s WHERE s.user_id = u.id AND s.state IN ('starting', 'running', 'stopping'))`)
	}
	if f.NameFilter != "" {
		where = append(where, `u.name LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscape(strings.ToLower(f.NameFilter))+"%")
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users u WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, mapErr(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users u WHERE `+cond+` ORDER BY u.id LIMIT ? OFFSET ?`,
		append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, mapErr(err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, mapErr(err)
		}
		out = append(out, u)
	}
	return out, total, mapErr(rows.Err())
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
