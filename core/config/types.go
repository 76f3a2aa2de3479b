package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as "90s", "5m" or "1h30m" in TOML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText writes the shortest form time.Duration knows.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(shortDuration(time.Duration(d))), nil
}

// UnmarshalText accepts Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like \"90s\", \"5m\" or \"1h30m\"", string(b))
	}
	*d = Duration(v)
	return nil
}

// shortDuration drops the zero units time.Duration.String prints ("1h0m0s" → "1h").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// ByteSize is a size written as "512M", "2G" or a plain number of bytes.
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10},
}

// MarshalText writes the largest unit that divides the size exactly.
func (b ByteSize) MarshalText() ([]byte, error) {
	v := int64(b)
	if v != 0 {
		for _, u := range sizeUnits {
			if v%u.mult == 0 {
				return []byte(strconv.FormatInt(v/u.mult, 10) + u.suffix), nil
			}
		}
	}
	return []byte(strconv.FormatInt(v, 10)), nil
}

// UnmarshalText accepts "0", "4096", "64K", "512M", "2G", "1T" (also with a
// trailing "B" or "iB": all units are powers of 1024).
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.ToUpper(strings.TrimSpace(string(text)))
	s = strings.TrimSuffix(strings.TrimSuffix(s, "IB"), "B")
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			mult, s = u.mult, strings.TrimSuffix(s, u.suffix)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size: write it like \"512M\", \"2G\" or a number of bytes", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// TOMLValue writes one configuration value as TOML: the kinds of values
// Config holds, nothing more. The setup template and the configuration
// reference use it.
func TOMLValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return quote(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int:
		return strconv.Itoa(v), nil
	case Duration:
		b, _ := v.MarshalText()
		return quote(string(b)), nil
	case *Duration:
		if v == nil {
			return "", nil // unset: only read from old files
		}
		return TOMLValue(*v)
	case ByteSize:
		b, _ := v.MarshalText()
		return quote(string(b)), nil
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]", nil
	case map[string]string:
		if len(v) == 0 {
			return "{}", nil
		}
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(v)) {
			kv = append(kv, quote(k)+" = "+quote(v[k]))
		}
		return "{ " + strings.Join(kv, ", ") + " }", nil
	case []Service, []Role, []Profile, []GPU:
		// Setup writes the defaults, which have none; these are written
		// by hand as [[...]] tables.
		if reflect.ValueOf(v).Len() == 0 {
			return "[]", nil
		}
		return "", fmt.Errorf("services, roles, profiles and GPUs are written by hand as [[...]] tables")
	}
	return "", fmt.Errorf("no TOML form for %T", v)
}

// quote makes a TOML basic string. JSON's escapes (\" \\ \n \uXXXX) are
// all valid in TOML; HTML escaping is turned off to keep '<' readable.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
