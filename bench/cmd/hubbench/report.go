package main

import (
	"fmt"
	"slices"
	"strings"
)

// table is one section of the report: metrics (rows) by arm (columns),
// each cell the median of the runs, then ratios between arms.
type table struct {
	title, how string
	arms       []string
	ratios     [][2]string
	rows       []*row
}

type row struct {
	metric string
	vals   map[string][]float64
}

type report struct {
	tables []*table
	notes  []string
}

func (r *report) table(title, how string, arms []string, ratios ...[2]string) *table {
	t := &table{title: title, how: how, arms: arms, ratios: ratios}
	r.tables = append(r.tables, t)
	return t
}

func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (t *table) add(metric, arm string, v float64) {
	for _, rw := range t.rows {
		if rw.metric == metric {
			rw.vals[arm] = append(rw.vals[arm], v)
			return
		}
	}
	t.rows = append(t.rows, &row{metric: metric, vals: map[string][]float64{arm: {v}}})
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func (r *report) markdown(o *opts) string {
	var b strings.Builder
	mode := fmt.Sprintf("full run: medians of %d runs", o.runs)
	if o.quick {
		mode = "BENCH_QUICK=1: one short run of each, a smoke test, not a measurement"
	}
	fmt.Fprintf(&b, "## hubd vs JupyterHub 3.0.0 + configurable-http-proxy 5.3.0 (%s)\n\n", mode)
	for _, t := range r.tables {
		fmt.Fprintf(&b, "### %s\n\n%s\n\n", t.title, t.how)
		b.WriteString("| metric |")
		for _, a := range t.arms {
			fmt.Fprintf(&b, " %s |", a)
		}
		for _, rt := range t.ratios {
			fmt.Fprintf(&b, " %s / %s |", rt[0], rt[1])
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(t.arms)+len(t.ratios)) + "\n")
		for _, rw := range t.rows {
			fmt.Fprintf(&b, "| %s |", rw.metric)
			for _, a := range t.arms {
				if vs := rw.vals[a]; len(vs) > 0 {
					fmt.Fprintf(&b, " %s |", num(median(vs)))
				} else {
					b.WriteString(" – |")
				}
			}
			for _, rt := range t.ratios {
				x, y := rw.vals[rt[0]], rw.vals[rt[1]]
				if len(x) > 0 && len(y) > 0 && median(y) != 0 {
					fmt.Fprintf(&b, " %.2f |", median(x)/median(y))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	if len(r.notes) > 0 {
		b.WriteString("### Notes from the run\n\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}
