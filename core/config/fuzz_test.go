package config

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse: Parse either accepts a file, and then the configuration is
// valid and survives `hubd config show` (Write) and Parse again
// unchanged, or refuses it with a list of problems that each name the file
// and a line inside it. It never panics.
func FuzzParse(f *testing.F) {
	var def bytes.Buffer
	if err := Default().Write(&def); err != nil {
		f.Fatal(err)
	}
	f.Add(def.Bytes())
	for _, s := range []string{
		"",
		"[hub]\nlisten = \"127.0.0.1:8000\"\nbase_url = \"/jupyter/\"\n",
		"[spawner]\nkind = \"systemd\"\ncommand = [\"/usr/bin/jupyterhub-singleuser\", \"--debug\"]\n[spawner.environment]\nA = \"b\"\n",
		"[proxy]\nmax_body_bytes = \"2M\"\nread_header_timeout = \"1m30s\"\n",
		"[auth]\nallowed_users = [\"alice\", \"bob\"]\nadmin_users = [\"alice\"]\n",
		"[spawner.systemd]\nmemory_max = \"1.5G\"\nextra_properties = { ProtectHome = \"yes\" }\n",
		"[hub]\nlisten = 8000\n",
		"[hub\nlisten = \"x\"",
		"[culler]\nenabled = true\ntimeout = \"-1s\"\n",
		"[auth]\nallowed_group = \"-root\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const path = "/etc/hubd/fuzz.toml"
		cfg, err := Parse(path, data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("refusal %T %q is not a list of problems", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range ce.Problems {
				if p.File != path || p.Line < 0 || p.Line > lines || p.Msg == "" {
					t.Fatalf("problem %+v: want the file, a line within its %d and a message", p, lines)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted an invalid configuration: %v", err)
		}
		var out bytes.Buffer
		if err := cfg.Write(&out); err != nil {
			t.Fatalf("write an accepted configuration: %v", err)
		}
		again, err := Parse(path, out.Bytes())
		if err != nil {
			t.Fatalf("the printed configuration does not parse: %v\n%s", err, out.Bytes())
		}
		if diff := cmp.Diff(cfg, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("printing and parsing changed the configuration (-parsed +reparsed):\n%s", diff)
		}
	})
}
