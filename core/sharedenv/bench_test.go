package sharedenv

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

const (
	benchTopDirs = 10
	benchSubDirs = 100 // per top directory
	benchFiles   = 100 // per subdirectory
)

// benchEnv builds 100,000 empty 0644 files in 1,011 directories owned by
// the caller's primary group (no root needed) and repairs it once, so the
// tree has the shared layout. The caller runs its measurements as
// sub-benchmarks: a benchmark that calls b.Run runs once, so the tree is
// built once.
func benchEnv(b *testing.B) (*Env, []string) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(b.TempDir(), "env")
	files := make([]string, 0, benchTopDirs*benchSubDirs*benchFiles)
	for i := range benchTopDirs {
		for j := range benchSubDirs {
			d := filepath.Join(root, fmt.Sprintf("top%02d", i), fmt.Sprintf("sub%03d", j))
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			for k := range benchFiles {
				f := filepath.Join(d, fmt.Sprintf("module_%03d.py", k))
				if err := os.WriteFile(f, nil, 0o644); err != nil {
					b.Fatal(err)
				}
				files = append(files, f)
			}
		}
	}
	env := New(Options{Path: root, Group: g.Name})
	if _, err := env.Repair(context.Background(), 0); err != nil {
		b.Fatal(err)
	}
	return env, files
}

func reportFilesPerSecond(b *testing.B, rep Report) {
	if rep.Files != benchTopDirs*benchSubDirs*benchFiles {
		b.Fatalf("walked %d files", rep.Files)
	}
	b.ReportMetric(float64(rep.Files)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkCheck100k checks a healthy tree: the everyday case.
func BenchmarkCheck100k(b *testing.B) {
	env, _ := benchEnv(b)
	b.Run("healthy", func(b *testing.B) {
		var rep Report
		for b.Loop() {
			var err error
			if rep, err = env.Check(context.Background(), 5); err != nil {
				b.Fatal(err)
			}
			if rep.Drift() != 0 {
				b.Fatalf("drift in a repaired tree: %v", rep.Problems)
			}
		}
		reportFilesPerSecond(b, rep)
	})
}

// BenchmarkRepair100k repairs a tree in which every file lost group write
// (the worst case: one open, fstat, fchmod and close per file).
func BenchmarkRepair100k(b *testing.B) {
	env, files := benchEnv(b)
	b.Run("all-files-drifted", func(b *testing.B) {
		var rep Report
		for b.Loop() {
			b.StopTimer()
			for _, f := range files {
				if err := os.Chmod(f, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			var err error
			if rep, err = env.Repair(context.Background(), 5); err != nil {
				b.Fatal(err)
			}
			if rep.Fixed[FileMode] != len(files) {
				b.Fatalf("fixed %v", rep.Fixed)
			}
		}
		reportFilesPerSecond(b, rep)
	})
}
