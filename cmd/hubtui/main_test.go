package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hubd/hubd/core/admin/wire"
)

func TestRun(t *testing.T) {
	cases := []struct {
		name      string
		args      []string
		env       map[string]string
		code      int
		stdout    string // substring
		stderr    string // substring
		uiErr     error
		wantUI    bool
		wantFlags config
	}{
		{name: "defaults", wantUI: true, wantFlags: config{socket: wire.DefaultSocket, refresh: 2 * time.Second}},
		{name: "flags", args: []string{"--socket", "/tmp/h.sock", "--readonly", "--refresh", "0"},
			env: map[string]string{"NO_COLOR": "1"}, wantUI: true,
			wantFlags: config{socket: "/tmp/h.sock", readOnly: true, noColor: true}},
		{name: "version", args: []string{"--version"}, stdout: "hubtui "},
		{name: "help", args: []string{"--help"}, stderr: "--socket"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, stderr: "bogus"},
		{name: "argument", args: []string{"extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{name: "negative refresh", args: []string{"--refresh", "-1s"}, code: 2, stderr: "must not be negative"},
		{name: "ui fails", uiErr: errors.New("could not open a TTY"), wantUI: true, code: 1,
			stderr: "hubtui: could not open a TTY", wantFlags: config{socket: wire.DefaultSocket, refresh: 2 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			var got *config
			ui := func(_ context.Context, cfg config, _ io.Writer) error {
				got = &cfg
				return tc.uiErr
			}
			code := run(t.Context(), tc.args, &stdout, &stderr, func(k string) string { return tc.env[k] }, ui)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q in them", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			switch {
			case tc.wantUI && got == nil:
				t.Error("the console did not run")
			case !tc.wantUI && got != nil:
				t.Errorf("the console ran with %+v", *got)
			case got != nil && *got != tc.wantFlags:
				t.Errorf("config %+v, want %+v", *got, tc.wantFlags)
			}
		})
	}
}
