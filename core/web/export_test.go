package web

// Cookie names, for the tests of package web_test.
const (
	SessionCookie = sessionCookie
	XSRFCookie    = xsrfCookie
	LoginCookie   = loginCookie
)
