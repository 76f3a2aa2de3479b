package spawner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// publicShare is the name of the public area among a request's shares.
const publicShare = "public"

// sharesDir is the directory in the home that holds the links to the
// user's shares.
const sharesDir = "shares"

// linkShares runs as the member (the helper): ~/shares/<name> becomes a
// link to each share they belong to, links there to shares they left go
// (a link whose target ends in its own name: the ones made here), and
// their own folder in the public area is made when missing. Nothing here
// may fail a start: a server without its links still runs.
func linkShares(home, userName string, shares []Share) []error {
	var errs []error
	dir := filepath.Join(home, sharesDir)
	if len(shares) > 0 {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return []error{fmt.Errorf("create %s: %w", dir, err)}
		}
	}
	want := map[string]string{}
	for _, s := range shares {
		want[s.Name] = s.Path
		if s.Name == publicShare {
			own := filepath.Join(s.Path, userName)
			if err := os.Mkdir(own, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				errs = append(errs, fmt.Errorf("create your folder in the public area %s: %w", own, err))
			}
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		link := filepath.Join(dir, e.Name())
		target, err := os.Readlink(link)
		if err != nil || want[e.Name()] == target || !filepath.IsAbs(target) || filepath.Base(target) != e.Name() {
			continue
		}
		if err := os.Remove(link); err != nil {
			errs = append(errs, err)
		}
	}
	for name, path := range want {
		link := filepath.Join(dir, name)
		if cur, err := os.Readlink(link); err == nil && cur == path {
			continue
		}
		if fi, err := os.Lstat(link); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			errs = append(errs, fmt.Errorf("%s is in the way of the link to share %s: move it away", link, name))
			continue
		}
		os.Remove(link)
		if err := os.Symlink(path, link); err != nil {
			errs = append(errs, fmt.Errorf("link share %s: %w", name, err))
		}
	}
	return errs
}

// ensurePublicFolder makes, as root, the user's own folder in the public
// area when it is missing, owned by uid (its group comes from the setgid
// area). Members can write the area, so nothing there is followed: the
// folder is made and chowned through descriptors.
func ensurePublicFolder(area, userName string, uid int) error {
	dfd, err := unix.Open(area, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the public area %s: %w", area, err)
	}
	defer unix.Close(dfd)
	if err := unix.Mkdirat(dfd, userName, 0o755); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil // theirs, or someone else's: check reports a folder its owner does not own
		}
		return fmt.Errorf("create %s/%s: %w", area, userName, err)
	}
	fd, err := unix.Openat(dfd, userName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s/%s: %w", area, userName, err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, uid, -1); err != nil {
		return fmt.Errorf("chown %s/%s: %w", area, userName, err)
	}
	return nil
}
