package web

// Cookie names, for the tests of package web_test.
const (
	SessionCookie = sessionCookie
	XSRFCookie    = xsrfCookie
	LoginCookie   = loginCookie
)

// LoggedOutURL is where a logout at the provider comes back to.
var LoggedOutURL = loggedOutURL
