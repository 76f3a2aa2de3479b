package auth

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// maxThrottleEntries caps each of the throttle's maps, so a flood of
// distinct names or addresses costs bounded memory (about 1 MB per map).
const maxThrottleEntries = 10000

// throttle counts failed logins per client address, per user and per
// (user, address) pair, each in a fixed window that starts at the first
// failure. It never touches the Unix account: refusing happens here, in
// front of PAM.
//
//   - An address with failuresPerAddress failures is refused outright.
//   - A user with failuresPerUser failures is refused only from addresses
//     that have themselves failed for that user. The real user, coming from
//     a clean address, still gets in, so guessing at someone's password
//     cannot lock them out; the guesser gets at most one more try per new
//     address (and each address is bounded by the rule above).
type throttle struct {
	now        func() time.Time
	window     time.Duration
	perUser    int
	perAddr    int
	maxEntries int

	mu    sync.Mutex
	users map[string]*counter
	addrs map[string]*counter
	pairs map[string]*counter
}

type counter struct {
	start time.Time
	n     int
}

func newThrottle(now func() time.Time, window time.Duration, perUser, perAddr int) *throttle {
	return &throttle{
		now: now, window: window, perUser: perUser, perAddr: perAddr,
		maxEntries: maxThrottleEntries,
		users:      make(map[string]*counter),
		addrs:      make(map[string]*counter),
		pairs:      make(map[string]*counter),
	}
}

func pairKey(user, addr string) string { return user + "\x00" + addr }

// wait returns how long user at addr must wait, or 0 if they may try now.
func (t *throttle) wait(user, addr string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if c := t.live(t.addrs, addr, now); c != nil && c.n >= t.perAddr {
		return t.until(c, now)
	}
	if c := t.live(t.users, user, now); c != nil && c.n >= t.perUser {
		if p := t.live(t.pairs, pairKey(user, addr), now); p != nil {
			return min(t.until(c, now), t.until(p, now))
		}
	}
	return 0
}

// fail records a wrong password for user from addr.
func (t *throttle) fail(user, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.bump(t.addrs, addr, now)
	t.bump(t.users, user, now)
	t.bump(t.pairs, pairKey(user, addr), now)
}

// succeed clears the pair: the address has proven it knows the password.
// The user's and the address's counts stay, since they may come from
// other people (an address can be a whole classroom behind NAT).
func (t *throttle) succeed(user, addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.pairs, pairKey(user, addr))
}

func (t *throttle) until(c *counter, now time.Time) time.Duration {
	return c.start.Add(t.window).Sub(now)
}

// live returns key's counter if its window is still open, dropping it
// otherwise.
func (t *throttle) live(m map[string]*counter, key string, now time.Time) *counter {
	c := m[key]
	if c != nil && t.until(c, now) <= 0 {
		delete(m, key)
		return nil
	}
	return c
}

func (t *throttle) bump(m map[string]*counter, key string, now time.Time) {
	c := t.live(m, key, now)
	if c == nil {
		if len(m) >= t.maxEntries {
			t.prune(m, now)
		}
		c = &counter{start: now}
		m[key] = c
	}
	c.n++
}

// prune drops expired entries and, if the map is still full, the oldest
// one. Only runs when a map is at its cap.
func (t *throttle) prune(m map[string]*counter, now time.Time) {
	var oldest string
	var oldestStart time.Time
	found := false
	for k, c := range m {
		if t.until(c, now) <= 0 {
			delete(m, k)
		} else if !found || c.start.Before(oldestStart) {
			oldest, oldestStart, found = k, c.start, true
		}
	}
	if len(m) >= t.maxEntries {
		delete(m, oldest)
	}
}

// addrKey turns a client address into the throttle and pool key: without
// a port, IPv4-mapped IPv6 as IPv4, and IPv6 by its /64, since one host
// usually owns a whole /64 and could otherwise rotate through it. Anything
// unparsable is used as given, cut to a bounded length.
func addrKey(clientAddr string) string {
	if host, _, err := net.SplitHostPort(clientAddr); err == nil {
		clientAddr = host
	}
	ip, err := netip.ParseAddr(clientAddr)
	if err != nil {
		const maxLen = 64
		if len(clientAddr) > maxLen {
			clientAddr = clientAddr[:maxLen]
		}
		return clientAddr
	}
	ip = ip.Unmap()
	if ip.Is6() {
		return netip.PrefixFrom(ip.WithZone(""), 64).Masked().String()
	}
	return ip.String()
}
