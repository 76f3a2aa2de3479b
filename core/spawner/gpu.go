package spawner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// DetectGPUs lists the GPUs nvidia-smi sees, each with its device node
// /dev/nvidia<minor number>; a host without nvidia-smi at that path has
// none (nil, nil).
func DetectGPUs(ctx context.Context, nvidiaSMI string) ([]GPU, error) {
	if _, err := os.Stat(nvidiaSMI); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, nvidiaSMI, "--query-gpu=index,minor_number", "--format=csv,noheader,nounits").Output()
	if err != nil {
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return nil, fmt.Errorf("list the GPUs with %s: %w (or list them as [[spawner.gpus]] tables)", nvidiaSMI, err)
	}
	return parseGPUList(string(out)), nil
}

// parseGPUList reads "index, minor_number" lines; lines it cannot read
// ("[N/A]" minor numbers of MIG devices) are left out.
func parseGPUList(out string) []GPU {
	var gpus []GPU
	for line := range strings.Lines(out) {
		idx, minor, ok := strings.Cut(line, ",")
		i, err1 := strconv.Atoi(strings.TrimSpace(idx))
		m, err2 := strconv.Atoi(strings.TrimSpace(minor))
		if !ok || err1 != nil || err2 != nil || i < 0 || m < 0 {
			continue
		}
		gpus = append(gpus, GPU{Index: i, Device: "/dev/nvidia" + strconv.Itoa(m)})
	}
	return gpus
}
