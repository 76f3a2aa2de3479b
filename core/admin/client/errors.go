package client

import (
	"fmt"
	"strings"
	"time"
)

// AccessDeniedError is the hub refusing the caller (403): not an admin or
// member, a member asking for an admin action, or a request that looked
// like it came from a browser. Message says which.
type AccessDeniedError struct {
	Message string
}

func (e *AccessDeniedError) Error() string { return e.Message }

// NotRunningError means nothing answers on the socket: it does not exist
// or nobody listens on it.
type NotRunningError struct {
	Socket string
	Err    error
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("cannot reach the hub at %s: %v: is the hub running? `systemctl status hubd`", e.Socket, e.Err)
}

func (e *NotRunningError) Unwrap() error { return e.Err }

// SocketPermissionError means the kernel refused to connect: the caller
// is in none of the groups the socket is open to.
type SocketPermissionError struct {
	Socket string
	// Groups are the groups that may connect, as the socket's ACL (or its
	// group owner) says; empty when they could not be read.
	Groups []string
	Err    error
}

func (e *SocketPermissionError) Error() string {
	switch len(e.Groups) {
	case 0:
		return fmt.Sprintf("permission denied on the socket %s: ask an admin to add you to the hub's members group (auth.allowed_group)", e.Socket)
	case 1:
		return fmt.Sprintf("permission denied on the socket %s: ask an admin to add you to group %s, then log in again", e.Socket, e.Groups[0])
	}
	return fmt.Sprintf("permission denied on the socket %s: ask an admin to add you to one of the groups %s, then log in again", e.Socket, strings.Join(e.Groups, ", "))
}

func (e *SocketPermissionError) Unwrap() error { return e.Err }

// APIError is any other error answer of the hub: bad input (400), an
// unknown user or backup (404), a conflict such as a backup already
// running (409), a restart too soon after the last (429), or a failure
// inside the hub (500). A streamed operation that fails after it started
// reports Status 500.
type APIError struct {
	Status  int
	Message string
	// RetryAfter is set with 429.
	RetryAfter time.Duration
}

func (e *APIError) Error() string { return e.Message }
