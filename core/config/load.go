package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted key, "" for syntax errors
	Msg  string
	Hint string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (" + p.Hint + ")")
	}
	return b.String()
}

// Error lists every problem found in a configuration.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Resolve picks the configuration path: the flag value, else $HUBD_CONFIG,
// else DefaultPath. explicit reports whether the user named a file (then
// a missing file is an error rather than "use the defaults").
func Resolve(flagValue string, getenv func(string) string) (path string, explicit bool) {
	if flagValue != "" {
		return flagValue, true
	}
	if v := getenv(EnvVar); v != "" {
		return v, true
	}
	return DefaultPath, false
}

// Load reads path over the defaults and validates the result. When the file
// does not exist and mustExist is false, the defaults are returned.
func Load(path string, mustExist bool) (Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		cfg := Default()
		return cfg, cfg.Validate()
	}
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w (create it with `hubd config show > %s` or point --config at another file)", err, path)
	}
	return Parse(path, data)
}

// Parse decodes data (named path in messages) over the defaults and validates it.
func Parse(path string, data []byte) (Config, error) {
	cfg := Default()
	cfg.Source = path
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return Config{}, &Error{Problems: []Problem{decodeProblem(path, err)}}
	}
	lines := keyLines(data)
	var problems []Problem
	for _, k := range md.Undecoded() {
		key := k.String()
		problems = append(problems, Problem{
			File: path, Line: lines[key], Key: key,
			Msg:  "unknown setting",
			Hint: unknownHint(key),
		})
	}
	if err := cfg.Validate(); err != nil {
		var ve *Error
		if !errors.As(err, &ve) {
			return Config{}, err
		}
		for _, p := range ve.Problems {
			p.File, p.Line = path, lines[p.Key]
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return Config{}, &Error{Problems: problems}
	}
	return cfg, nil
}

func decodeProblem(path string, err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		p := Problem{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		if p.Msg == "" {
			p.Msg = err.Error()
		}
		p.Hint = "check the TOML syntax and the value's type; `hubd config show` prints a valid file"
		return p
	}
	// Type mismatches come back as plain errors in the form
	// `toml: line N (last key "k"): message`.
	if m := plainDecodeErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{File: path, Line: line, Key: m[2], Msg: m[3], Hint: "`hubd config show` shows every setting with a value of the right type"}
	}
	return Problem{File: path, Msg: err.Error(), Hint: "`hubd config show` prints a valid file"}
}

var plainDecodeErr = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// unknownHint suggests the known key closest to a misspelt one.
func unknownHint(key string) string {
	known := knownKeys()
	best, bestDist := "", 4
	for _, k := range known {
		if d := editDistance(key, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "remove it; `hubd config show` lists every setting"
}

// knownKeys lists the dotted keys of every setting, from the encoded defaults.
func knownKeys() []string {
	var buf bytes.Buffer
	_ = Default().Write(&buf)
	lines := keyLines(buf.Bytes())
	keys := make([]string, 0, len(lines))
	for k := range lines {
		keys = append(keys, k)
	}
	return keys
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// keyLines maps dotted keys (and table headers) to the line that defines
// them. It understands the subset of TOML a hand-written config uses:
// [table] headers, key = value lines and dotted keys.
func keyLines(data []byte) map[string]int {
	lines := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "["):
			end := strings.Index(line, "]")
			if end < 0 {
				continue
			}
			table = cleanKey(strings.Trim(line[:end], "[]"))
			if _, ok := lines[table]; !ok {
				lines[table] = n
			}
		default:
			eq := strings.Index(line, "=")
			if eq <= 0 {
				continue
			}
			key := cleanKey(line[:eq])
			if table != "" {
				key = table + "." + key
			}
			if _, ok := lines[key]; !ok {
				lines[key] = n
			}
		}
	}
	return lines
}

func cleanKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// Write prints the configuration as TOML.
func (c Config) Write(w io.Writer) error {
	enc := toml.NewEncoder(w)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return nil
}
