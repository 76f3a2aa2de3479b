package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// GPU is one GPU of the hub's pool.
type GPU struct {
	Index  int
	Device string
}

// GPUHolder is a GPU handed to a server.
type GPUHolder struct {
	GPU
	User, Server string
	Since        time.Time
}

// Name is the holder as the spawn page and hubtui show it: user, or
// user/server for a named server.
func (h GPUHolder) Name() string {
	if h.Server == "" {
		return h.User
	}
	return h.User + "/" + h.Server
}

// GPUsBusyError means the pool has fewer free GPUs than a server asked
// for; Holders says who has them.
type GPUsBusyError struct {
	Want, Pool int
	Holders    []GPUHolder
}

func (e *GPUsBusyError) Error() string {
	if e.Want > e.Pool {
		return fmt.Sprintf("the profile asks for %d GPUs but the hub has %d", e.Want, e.Pool)
	}
	held := make([]string, len(e.Holders))
	for i, h := range e.Holders {
		held[i] = fmt.Sprintf("GPU %d: %s (since %s)", h.Index, h.Name(), h.Since.UTC().Format("15:04 UTC"))
	}
	return fmt.Sprintf("waiting for %d of the %d GPUs; in use: %s", e.Want, e.Pool, strings.Join(held, ", "))
}

// AssignGPUs hands want GPUs of pool that no other server holds to a
// server, in pool order, replacing what it held before; with fewer free it
// assigns nothing and returns a *GPUsBusyError.
func (s *Store) AssignGPUs(ctx context.Context, serverID int64, want int, pool []GPU) ([]GPU, error) {
	var got []GPU
	var busy *GPUsBusyError
	err := s.tx(ctx, func(tx *sql.Tx) error {
		got, busy = nil, nil
		if _, err := tx.ExecContext(ctx, `DELETE FROM gpu_assignments WHERE server_id = ?`, serverID); err != nil {
			return err
		}
		holders, err := gpuHolders(ctx, tx)
		if err != nil {
			return err
		}
		taken := map[int]bool{}
		for _, h := range holders {
			taken[h.Index] = true
		}
		for _, g := range pool {
			if len(got) < want && !taken[g.Index] {
				got = append(got, g)
			}
		}
		if len(got) < want {
			busy, got = &GPUsBusyError{Want: want, Pool: len(pool), Holders: holders}, nil
			return nil
		}
		now := FormatTime(s.now())
		for _, g := range got {
			if _, err := tx.ExecContext(ctx, `INSERT INTO gpu_assignments (gpu, device, server_id, assigned) VALUES (?, ?, ?, ?)`,
				g.Index, g.Device, serverID, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if busy != nil {
		return nil, busy
	}
	return got, nil
}

// GPUHolders lists the GPUs handed out, by index.
func (s *Store) GPUHolders(ctx context.Context) ([]GPUHolder, error) { return gpuHolders(ctx, s.db) }

func gpuHolders(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]GPUHolder, error) {
	rows, err := q.QueryContext(ctx, `SELECT g.gpu, g.device, u.name, s.name, g.assigned FROM gpu_assignments g
		JOIN servers s ON s.id = g.server_id JOIN users u ON u.id = s.user_id ORDER BY g.gpu`)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []GPUHolder
	for rows.Next() {
		var h GPUHolder
		var since string
		if err := rows.Scan(&h.Index, &h.Device, &h.User, &h.Server, &since); err != nil {
			return nil, mapErr(err)
		}
		h.Since = parseTime(sql.NullString{String: since, Valid: true})
		out = append(out, h)
	}
	return out, mapErr(rows.Err())
}
