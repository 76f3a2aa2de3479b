package sharedenv

import (
	"fmt"
	"slices"

	"github.com/hubd/hubd/core/admin/wire"
)

// Kind is one kind of drift from the shared layout.
type Kind int

// The kinds of drift, in the order reports list them.
const (
	// WrongGroup: owned by another group than the members group (mv keeps
	// the mover's primary group; files made as root elsewhere are root's).
	WrongGroup Kind = iota
	// FileMode: a regular file the group cannot read and write (or run,
	// when its owner can): cp of a 0644 file, mv of a 0600 file, root's umask.
	FileMode
	// DirMode: a directory the group cannot list, enter or write.
	DirMode
	// NoSetgid: a directory without the setgid bit, so what is created in
	// it gets the creator's primary group.
	NoSetgid
	// NoDefaultACL: a directory whose default ACL is missing or does not
	// give the group rwx, so what is created in it follows the umask.
	NoDefaultACL
	// Unreadable: a directory the checking user cannot read, so the check
	// could not look inside it.
	Unreadable

	numKinds
)

var kindNames = [numKinds]struct{ slug, text string }{
	WrongGroup:   {"wrong-group", "not owned by the group"},
	FileMode:     {"file-mode", "files not group-writable"},
	DirMode:      {"dir-mode", "directories not group-writable"},
	NoSetgid:     {"no-setgid", "directories without setgid"},
	NoDefaultACL: {"no-default-acl", "directories without a default ACL granting the group rwx"},
	Unreadable:   {"unreadable", "directories that could not be read"},
}

// Kinds lists every kind, in report order.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// String is the kind's short name, as used in JSON.
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k].slug
}

// Description is a phrase for people, e.g. "files not group-writable".
func (k Kind) Description() string {
	if k < 0 || k >= numKinds {
		return k.String()
	}
	return kindNames[k].text
}

// MarshalText makes Kind a readable JSON map key.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Report is the outcome of a walk over the environment.
type Report struct {
	Path  string `json:"path"`
	Group string `json:"group"`
	// Dirs, Files and Symlinks count what was seen; symlinks are never
	// followed or changed, other special files are ignored.
	Dirs     int `json:"dirs"`
	Files    int `json:"files"`
	Symlinks int `json:"symlinks"`
	// Bytes is the disk space used by the directories and files.
	Bytes int64 `json:"bytes"`
	// ACLSupported is false when the filesystem refuses POSIX ACLs; the
	// layout then rests on setgid and modes (and members' umask 0002).
	ACLSupported bool `json:"acl_supported"`
	// Problems counts paths per kind of drift found; one path may show
	// several kinds. Examples holds up to the requested number of
	// absolute paths per kind, sorted.
	Problems map[Kind]int      `json:"problems"`
	Examples map[Kind][]string `json:"examples,omitempty"`
	// Fixed counts the repairs made per kind (Repair and Init only).
	Fixed map[Kind]int `json:"fixed,omitempty"`
	// Errors counts paths that could not be checked or repaired;
	// ErrorExamples says why for up to the requested number of them.
	Errors        int      `json:"errors"`
	ErrorExamples []string `json:"error_examples,omitempty"`
}

// Drift is the number of problems found, over all kinds.
func (r Report) Drift() int {
	n := 0
	for _, c := range r.Problems {
		n += c
	}
	return n
}

// Remaining is the number of problems found and not fixed.
func (r Report) Remaining() int {
	n := r.Drift()
	for _, c := range r.Fixed {
		n -= c
	}
	return n
}

// Healthy reports whether nothing is left to fix or look at.
func (r Report) Healthy() bool { return r.Remaining() == 0 && r.Errors == 0 }

// Wire is the report in the admin API's shape, kinds in report order.
func (r Report) Wire() wire.EnvReport {
	out := wire.EnvReport{Dirs: r.Dirs, Files: r.Files, Symlinks: r.Symlinks, Bytes: r.Bytes,
		ACLSupported: r.ACLSupported, Errors: r.Errors, ErrorExamples: r.ErrorExamples}
	for _, k := range Kinds() {
		if n := r.Problems[k]; n > 0 {
			out.Problems = append(out.Problems, wire.EnvProblem{Kind: k.String(), Description: k.Description(),
				Count: n, Fixed: r.Fixed[k], Examples: r.Examples[k]})
		}
	}
	return out
}

// tally is what one walker goroutine counts; tallies are summed at the end
// so the hot path shares nothing.
type tally struct {
	dirs, files, symlinks, errors int
	bytes                         int64
	problems, fixed               [numKinds]int
}

func (t *tally) add(o *tally) {
	t.dirs += o.dirs
	t.files += o.files
	t.symlinks += o.symlinks
	t.errors += o.errors
	t.bytes += o.bytes
	for k := range numKinds {
		t.problems[k] += o.problems[k]
		t.fixed[k] += o.fixed[k]
	}
}

// fill copies the counts into r; kinds with a zero count are left out.
func (t *tally) fill(r *Report) {
	r.Dirs, r.Files, r.Symlinks, r.Bytes, r.Errors = t.dirs, t.files, t.symlinks, t.bytes, t.errors
	r.Problems = map[Kind]int{}
	for k := range numKinds {
		if t.problems[k] > 0 {
			r.Problems[k] = t.problems[k]
		}
		if t.fixed[k] > 0 {
			if r.Fixed == nil {
				r.Fixed = map[Kind]int{}
			}
			r.Fixed[k] = t.fixed[k]
		}
	}
	for _, ex := range r.Examples {
		slices.Sort(ex)
	}
	slices.Sort(r.ErrorExamples)
}
