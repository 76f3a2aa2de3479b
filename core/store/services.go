package store

import (
	"context"
	"database/sql"
	"slices"
)

// Service is a row of services: a program that holds API tokens without
// being a user. What it may do and where it listens come from the
// configuration; the row gives its tokens and OAuth client an owner.
type Service struct {
	ID      int64
	Name    string
	Created string
}

// ServiceCredentials are what the configuration says about one service's
// secrets: its token (kept as the only config token of the service) and,
// for a service with a URL, its OAuth client.
type ServiceCredentials struct {
	Name        string
	TokenHash   string // "" for none
	TokenPrefix string
	TokenScopes string // JSON list
	RedirectURI string // "" for no OAuth client
}

// SyncServices makes the services table match the configuration: it adds
// the services named in creds, removes the others (with their tokens and
// OAuth clients), and replaces each one's config token and OAuth client.
// It returns the services by name.
func (s *Store) SyncServices(ctx context.Context, creds []ServiceCredentials) (map[string]Service, error) {
	now := FormatTime(s.now())
	out := map[string]Service{}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, name FROM services`)
		if err != nil {
			return err
		}
		existing := map[string]int64{}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return err
			}
			existing[name] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for name, id := range existing {
			if !slices.ContainsFunc(creds, func(c ServiceCredentials) bool { return c.Name == name }) {
				if _, err := tx.ExecContext(ctx, `DELETE FROM services WHERE id = ?`, id); err != nil {
					return err
				}
			}
		}
		for _, c := range creds {
			id, ok := existing[c.Name]
			if !ok {
				res, err := tx.ExecContext(ctx, `INSERT INTO services (name, created) VALUES (?, ?)`, c.Name, now)
				if err != nil {
					return err
				}
				if id, err = res.LastInsertId(); err != nil {
					return err
				}
			}
			out[c.Name] = Service{ID: id, Name: c.Name}
			if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE service_id = ? AND kind = 'service'`, id); err != nil {
				return err
			}
			clientID := ServiceClientID(c.Name)
			if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE service_id = ? OR identifier = ?`, id, clientID); err != nil {
				return err
			}
			if c.TokenHash == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (service_id, hash, prefix, kind, scopes, note, created)
				VALUES (?, ?, ?, 'service', ?, 'from the configuration', ?)`, id, c.TokenHash, c.TokenPrefix, c.TokenScopes, now); err != nil {
				return err
			}
			if c.RedirectURI != "" {
				if _, err := tx.ExecContext(ctx, `INSERT INTO oauth_clients (identifier, secret_hash, redirect_uri, description, service_id, created)
					VALUES (?, ?, ?, ?, ?, ?)`, clientID, c.TokenHash, c.RedirectURI, "Service "+c.Name, id, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return out, err
}

// ServiceByName returns the named service or ErrNotFound.
func (s *Store) ServiceByName(ctx context.Context, name string) (Service, error) {
	var sv Service
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created FROM services WHERE name = ?`, name).Scan(&sv.ID, &sv.Name, &sv.Created)
	return sv, mapErr(err)
}

// ServiceByID returns the service or ErrNotFound.
func (s *Store) ServiceByID(ctx context.Context, id int64) (Service, error) {
	var sv Service
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created FROM services WHERE id = ?`, id).Scan(&sv.ID, &sv.Name, &sv.Created)
	return sv, mapErr(err)
}

// ServiceClientID is the OAuth client id of a service, as JupyterHub
// names it.
func ServiceClientID(name string) string { return "service-" + name }
