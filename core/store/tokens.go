package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"time"
)

// Token kinds.
const (
	TokenAPI    = "api"    // created by a user or admin
	TokenServer = "server" // a server's JUPYTERHUB_API_TOKEN
	TokenOAuth  = "oauth"  // issued to a browser through a server's or service's OAuth client
	// TokenService is a service's token from the configuration (its
	// api_token_file, or made fresh for a service the hub runs).
	TokenService = "service"
)

// Token is a row of api_tokens. The token itself is never stored: Hash is
// its SHA-256 (tokens are 128+ random bits, so a slow hash adds nothing).
// Its owner is a user (UserID, User) or a service (ServiceID, Service).
type Token struct {
	ID           int64
	UserID       int64
	User         string
	ServiceID    int64
	Service      string
	Hash         string
	Prefix       string
	Kind         string
	ServerID     int64
	ClientID     string
	SessionID    string
	Scopes       string // JSON list
	Note         string
	Created      time.Time
	ExpiresAt    time.Time
	LastActivity time.Time
}

// HashToken is how tokens, OAuth codes and client secrets are stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// OAuthClientID is the OAuth client id of a server, as JupyterHub names it.
func OAuthClientID(user, server string) string {
	id := "jupyterhub-user-" + url.PathEscape(user)
	if server != "" {
		id += "-" + url.PathEscape(server)
	}
	return id
}

// tokenFrom joins a token's owner, whichever kind it is.
const tokenFrom = ` FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id LEFT JOIN services v ON v.id = t.service_id `

const tokenCols = `t.id, coalesce(t.user_id, 0), coalesce(u.name, ''), coalesce(t.service_id, 0), coalesce(v.name, ''),
	t.hash, t.prefix, t.kind, coalesce(t.server_id, 0), coalesce(t.client_id, ''),
	coalesce(t.session_id, ''), t.scopes, t.note, t.created, t.expires_at, t.last_activity`

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var created, expires, last sql.NullString
	err := sc.Scan(&t.ID, &t.UserID, &t.User, &t.ServiceID, &t.Service, &t.Hash, &t.Prefix, &t.Kind, &t.ServerID, &t.ClientID, &t.SessionID,
		&t.Scopes, &t.Note, &created, &expires, &last)
	if err != nil {
		return Token{}, err
	}
	t.Created, t.ExpiresAt, t.LastActivity = parseTime(created), parseTime(expires), parseTime(last)
	return t, nil
}

// CreateToken stores a new token row (Hash, Prefix, Kind, UserID, Scopes
// and the optional fields) and returns it with its id.
func (s *Store) CreateToken(ctx context.Context, t Token) (Token, error) {
	t.Created = s.now().UTC()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (user_id, service_id, hash, prefix, kind, server_id, client_id, session_id, scopes, note, created, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			nullInt(t.UserID), nullInt(t.ServiceID), t.Hash, t.Prefix, t.Kind, nullInt(t.ServerID), nullString(t.ClientID), nullString(t.SessionID),
			t.Scopes, t.Note, FormatTime(t.Created), nullTime(t.ExpiresAt))
		if err != nil {
			return err
		}
		t.ID, err = res.LastInsertId()
		return err
	})
	return t, err
}

// TokenByHash finds an unexpired token; ErrNotFound otherwise.
func (s *Store) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+tokenFrom+`
		WHERE t.hash = ? AND (t.expires_at IS NULL OR t.expires_at > ?)`, hash, FormatTime(s.now())))
	return t, mapErr(err)
}

// Tokens lists a user's unexpired tokens, deleting expired ones on the way.
func (s *Store) Tokens(ctx context.Context, userID int64) ([]Token, error) {
	return s.ListTokens(ctx, TokenFilter{UserID: userID})
}

// TokenFilter selects tokens for ListTokens: one user's or one service's
// (or everyone's when both are 0), and, when Kinds is set, only those
// kinds.
type TokenFilter struct {
	UserID, ServiceID int64
	Kinds             []string
}

// ListTokens lists unexpired tokens, deleting expired ones on the way.
func (s *Store) ListTokens(ctx context.Context, f TokenFilter) ([]Token, error) {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?`,
		FormatTime(s.now())); err != nil {
		return nil, mapErr(err)
	}
	where, args := []string{"1=1"}, []any{}
	if f.UserID != 0 {
		where, args = append(where, "t.user_id = ?"), append(args, f.UserID)
	}
	if f.ServiceID != 0 {
		where, args = append(where, "t.service_id = ?"), append(args, f.ServiceID)
	}
	if len(f.Kinds) > 0 {
		where = append(where, "t.kind IN ("+placeholders(len(f.Kinds))+")")
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenCols+tokenFrom+` WHERE `+strings.Join(where, " AND ")+` ORDER BY t.id`, args...)
	if err != nil {
		return nil, mapErr(err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, t)
	}
	return out, mapErr(rows.Err())
}

// TokenByID returns a token by its id; ErrNotFound when there is none.
func (s *Store) TokenByID(ctx context.Context, id int64) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+tokenFrom+` WHERE t.id = ?`, id))
	return t, mapErr(err)
}

// DeleteToken removes one of a user's tokens; ErrNotFound if there is none.
func (s *Store) DeleteToken(ctx context.Context, userID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ? AND id = ?`, userID, id))
	})
}

// RevokeToken removes a token whoever owns it; ErrNotFound if there is none.
func (s *Store) RevokeToken(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return expectOne(tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id))
	})
}

// TouchToken records token use at most once per interval (the caller
// decides); it never moves the time back.
func (s *Store) TouchToken(ctx context.Context, id int64, t time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_activity = ? WHERE id = ? AND (last_activity IS NULL OR last_activity < ?)`,
			FormatTime(t), id, FormatTime(t))
		return err
	})
}

// OAuthClient is a row of oauth_clients.
type OAuthClient struct {
	Identifier  string
	SecretHash  string
	RedirectURI string
	// The client belongs to a server (ServerID) or a service (ServiceID).
	ServerID  int64
	ServiceID int64
}

// OAuthClient finds a client by its identifier.
func (s *Store) OAuthClient(ctx context.Context, identifier string) (OAuthClient, error) {
	var c OAuthClient
	var sid, svc sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT identifier, secret_hash, redirect_uri, server_id, service_id FROM oauth_clients WHERE identifier = ?`, identifier).
		Scan(&c.Identifier, &c.SecretHash, &c.RedirectURI, &sid, &svc)
	c.ServerID, c.ServiceID = sid.Int64, svc.Int64
	return c, mapErr(err)
}

// OAuthCode is a pending authorization code.
type OAuthCode struct {
	ClientID    string
	UserID      int64
	RedirectURI string
	SessionID   string
	Scopes      string
	ExpiresAt   time.Time
}

// CreateOAuthCode stores the hash of an authorization code.
func (s *Store) CreateOAuthCode(ctx context.Context, codeHash string, c OAuthCode) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, session_id, scopes, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, codeHash, c.ClientID, c.UserID, c.RedirectURI, nullString(c.SessionID), c.Scopes, FormatTime(c.ExpiresAt))
		return err
	})
}

// TakeOAuthCode deletes and returns a code (a code is good once); expired
// codes are ErrNotFound.
func (s *Store) TakeOAuthCode(ctx context.Context, codeHash string) (OAuthCode, error) {
	var c OAuthCode
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var sess sql.NullString
		var exp string
		err := tx.QueryRowContext(ctx, `SELECT client_id, user_id, redirect_uri, session_id, scopes, expires_at FROM oauth_codes WHERE code_hash = ?`, codeHash).
			Scan(&c.ClientID, &c.UserID, &c.RedirectURI, &sess, &c.Scopes, &exp)
		if err != nil {
			return err
		}
		c.SessionID = sess.String
		c.ExpiresAt = parseTime(sql.NullString{String: exp, Valid: true})
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_codes WHERE code_hash = ? OR expires_at <= ?`, codeHash, FormatTime(s.now())); err != nil {
			return err
		}
		if !c.ExpiresAt.After(s.now()) {
			return sql.ErrNoRows
		}
		return nil
	})
	return c, err
}

// Session is a browser login.
type Session struct {
	ID         string
	UserID     int64
	Created    time.Time
	ExpiresAt  time.Time
	ClientAddr string
	UserAgent  string
	// IDToken is the provider's ID token of a single sign-on ("" for
	// other logins), for the logout at the provider.
	IDToken string
}

// CreateSession records a login.
func (s *Store) CreateSession(ctx context.Context, sess Session) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO login_sessions (id, user_id, created, expires_at, client_addr, user_agent, id_token) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.UserID, FormatTime(s.now()), FormatTime(sess.ExpiresAt), sess.ClientAddr, sess.UserAgent, sess.IDToken)
		return err
	})
}

// SessionUser returns the user of a live session.
func (s *Store) SessionUser(ctx context.Context, id string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+`
		FROM login_sessions l JOIN users u ON u.id = l.user_id WHERE l.id = ? AND l.expires_at > ?`, id, FormatTime(s.now())))
	return u, mapErr(err)
}

// EndSession deletes a login and every token issued under it (logout),
// and returns the login's ID token ("" when it had none or is gone).
func (s *Store) EndSession(ctx context.Context, id string) (string, error) {
	var idToken string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id_token FROM login_sessions WHERE id = ?`, id).Scan(&idToken)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE session_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM login_sessions WHERE id = ?`, id)
		return err
	})
	return idToken, err
}

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}
