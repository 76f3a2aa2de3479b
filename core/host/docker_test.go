package host

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hubd/hubd/core/config"
	"github.com/hubd/hubd/core/spawner"
	"github.com/hubd/hubd/internal/testlab/dockerlab"
	"github.com/hubd/hubd/internal/testutil"
)

// Doctor's docker checks against the lab engine: the engine, the image,
// and who may use the socket; then a missing image and an engine that is
// down.
func TestCheckDocker(t *testing.T) {
	e := dockerlab.Start(t, dockerlab.Options{})
	var h testutil.Host
	t.Cleanup(h.Cleanup)
	if err := h.SystemUser("hubtest-hostdk"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := config.Default()
	cfg.Spawner.Kind = spawner.KindDocker
	o := Options{Config: cfg, ConfigPath: "/etc/hubd/hubd.toml", HubUser: "root", Name: DefaultName}
	// dk is the engine at host, with image as the hub's image.
	dk := func(host, image string) *spawner.Docker {
		o.Config.Spawner.Docker.Image = image
		d, err := spawner.NewDocker(spawner.DockerOptions{Host: host, Image: image, HubPort: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	levels := func(fs []Finding) string {
		var out []string
		for _, f := range fs {
			out = append(out, string(f.Level))
		}
		return strings.Join(out, " ")
	}

	fs := o.checkDocker(ctx, dk(e.Host, e.SingleuserImage))
	if levels(fs) != "OK OK OK" || !strings.Contains(fs[0].Message, e.Version) {
		t.Errorf("a working engine: %+v", fs)
	}

	o.HubUser = "hubtest-hostdk"
	fs = o.checkDocker(ctx, dk(e.Host, e.SingleuserImage))
	if levels(fs) != "OK OK FAIL" || !strings.Contains(fs[2].Fix, "usermod -aG") || !strings.Contains(fs[2].Fix, "hubtest-hostdk") {
		t.Errorf("a hub account outside the socket's group: %+v", fs[2])
	}
	o.HubUser = "root"

	sock := strings.TrimPrefix(e.Host, "unix://")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	fs = o.checkDocker(ctx, dk(e.Host, e.SingleuserImage))
	os.Chmod(sock, fi.Mode().Perm())
	if fs[2].Level != Fail || fs[2].Fix != "chmod o-rw "+sock {
		t.Errorf("a world-writable socket: %+v", fs[2])
	}

	fs = o.checkDocker(ctx, dk(e.Host, "hubtest/missing:1"))
	if levels(fs) != "OK FAIL OK" || fs[1].Fix != "docker pull hubtest/missing:1" || !strings.Contains(fs[1].Message, "hubtest/missing:1") {
		t.Errorf("a missing image: %+v", fs[1])
	}

	// Profiles with images of their own: each is checked once, the
	// hub's only while a start can fall back on it.
	o.Config.Spawner.Profiles = []config.Profile{
		{Name: "r", Docker: config.ProfileDocker{Image: "hubtest/missing-r:1"}},
		{Name: "py", Docker: config.ProfileDocker{Image: e.SingleuserImage}},
		{Name: "py2", Docker: config.ProfileDocker{Image: e.SingleuserImage}},
	}
	fs = o.checkDocker(ctx, dk(e.Host, "hubtest/missing-hub:1"))
	if levels(fs) != "OK FAIL OK OK" || !strings.Contains(fs[1].Check, "hubtest/missing-r:1") || fs[2].Check != "docker image "+e.SingleuserImage {
		t.Errorf("profiles' images: %+v", fs)
	}
	o.Config.Spawner.Profiles = nil

	fs = o.checkDocker(ctx, dk("unix:///run/hubtest-no-docker.sock", "x"))
	if levels(fs) != "FAIL FAIL" || !strings.Contains(fs[0].Message, "does not answer") {
		t.Errorf("an engine that is down: %+v", fs)
	}
}
