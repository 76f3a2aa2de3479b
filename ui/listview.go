package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/table"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// column is one column of a list view.
type column[T any] struct {
	title string
	width int // cells, for a fixed column
	// wide shows the column only on wide terminals, to leave an
	// 80-column screen to the columns that matter most.
	wide bool
	flex int // share of the width the fixed columns leave, for a flexible one
	cell func(T) string
	// cmp orders items by this column; nil when it cannot sort.
	cmp func(a, b T) int
}

// listView is the table plumbing the sessions, backups and audit views
// share: a filter (/), optional sorting by column, optional marks, a
// line that says what is shown, and the last fetch error in place.
type listView[T any] struct {
	c        *Common
	cols     []column[T]
	key      func(T) string
	noun     [2]string // singular, plural
	empty    string    // shown when there is nothing at all
	markable bool
	sortable bool

	items     []T
	shown     []T
	loaded    bool
	err       error // the last fetch failed; items are older
	marks     map[string]bool
	filter    textinput.Model
	filtering bool
	sortBy    int
	desc      bool

	table         table.Model
	width, height int
}

func newListView[T any](c *Common, cols []column[T], key func(T) string, noun [2]string, empty string) *listView[T] {
	lv := &listView[T]{c: c, cols: cols, key: key, noun: noun, empty: empty, marks: map[string]bool{}, sortBy: -1,
		filter: newInput(c.styles, "")}
	lv.table = table.New(table.WithFocused(true), table.WithKeyMap(c.keys.table()), table.WithStyles(c.styles.table()))
	return lv
}

// sortOn makes the list sortable, starting with column i.
func (lv *listView[T]) sortOn(i int) *listView[T] {
	lv.sortable, lv.sortBy = true, i
	return lv
}

// withMarks lets the user mark rows.
func (lv *listView[T]) withMarks() *listView[T] {
	lv.markable = true
	return lv
}

// setItems replaces the items after a fetch, keeping the cursor on the
// same item and forgetting marks of items that are gone.
func (lv *listView[T]) setItems(items []T, err error) {
	if err != nil {
		lv.err = err
		return
	}
	lv.items, lv.err, lv.loaded = items, nil, true
	keep := map[string]bool{}
	for _, it := range items {
		if k := lv.key(it); lv.marks[k] {
			keep[k] = true
		}
	}
	lv.marks = keep
	lv.apply()
}

// apply filters and sorts the items into the table.
func (lv *listView[T]) apply() {
	var sel string
	if it, ok := lv.selected(); ok {
		sel = lv.key(it)
	}
	needle := strings.ToLower(lv.filter.Value())
	lv.shown = lv.shown[:0]
	for _, it := range lv.items {
		if needle == "" || strings.Contains(strings.ToLower(strings.Join(lv.cells(it), "\x00")), needle) {
			lv.shown = append(lv.shown, it)
		}
	}
	if lv.sortable {
		by := lv.cols[lv.sortBy].cmp
		slices.SortStableFunc(lv.shown, func(a, b T) int {
			c := by(a, b)
			if lv.desc {
				c = -c
			}
			return cmp.Or(c, strings.Compare(lv.key(a), lv.key(b)))
		})
	}
	rows := make([]table.Row, len(lv.shown))
	cursor := 0
	for i, it := range lv.shown {
		rows[i] = lv.row(it)
		if lv.key(it) == sel {
			cursor = i
		}
	}
	lv.table.SetColumns(lv.columns())
	lv.table.SetRows(rows)
	lv.table.SetCursor(cursor)
}

func (lv *listView[T]) cells(it T) []string {
	out := make([]string, len(lv.cols))
	for i, c := range lv.cols {
		out[i] = c.cell(it)
	}
	return out
}

func (lv *listView[T]) row(it T) table.Row {
	cells := lv.cells(it)
	if !lv.markable {
		return cells
	}
	mark := " "
	if lv.marks[lv.key(it)] {
		mark = "✓"
	}
	return append(table.Row{mark}, cells...)
}

// wideScreen is the width from which wide-only columns show.
const wideScreen = 120

// columns sizes the columns to the width: fixed ones as declared, the
// rest shared by the flexible ones. When even the fixed columns do not
// fit, the last ones get width 0, which the table leaves out.
func (lv *listView[T]) columns() []table.Column {
	pad := lv.c.styles.TableCell.GetHorizontalFrameSize()
	avail := lv.width
	var out []table.Column
	if lv.markable {
		out = append(out, table.Column{Width: 1})
		avail -= 1 + pad
	}
	widths := make([]int, len(lv.cols))
	fixed, flex := 0, 0
	for i, c := range lv.cols {
		if c.wide && lv.width < wideScreen {
			continue
		}
		if c.flex > 0 {
			flex += c.flex
			continue
		}
		widths[i] = c.width
		fixed += c.width + pad
	}
	for i := len(lv.cols) - 1; i >= 0 && fixed > avail; i-- {
		if lv.cols[i].flex == 0 {
			fixed -= widths[i] + pad
			widths[i] = 0
		}
	}
	left := avail - fixed
	for i, c := range lv.cols {
		if c.flex == 0 || (c.wide && lv.width < wideScreen) {
			continue
		}
		share := left * c.flex / flex
		if w := share - pad; w >= 3 {
			widths[i] = w
		}
		left, flex = left-share, flex-c.flex
	}
	for i, c := range lv.cols {
		title := c.title
		if lv.sortable && i == lv.sortBy {
			title += map[bool]string{false: "↑", true: "↓"}[lv.desc]
		}
		out = append(out, table.Column{Title: title, Width: widths[i]})
	}
	return out
}

func (lv *listView[T]) selected() (T, bool) {
	i := lv.table.Cursor()
	if i < 0 || i >= len(lv.shown) {
		var zero T
		return zero, false
	}
	return lv.shown[i], true
}

// marked returns the marked items in the order shown, then those the
// filter hides, and how many the filter hides.
func (lv *listView[T]) marked() (all []T, hidden int) {
	shown := map[string]bool{}
	for _, it := range lv.shown {
		shown[lv.key(it)] = true
		if lv.marks[lv.key(it)] {
			all = append(all, it)
		}
	}
	for _, it := range lv.items {
		if k := lv.key(it); lv.marks[k] && !shown[k] {
			all = append(all, it)
			hidden++
		}
	}
	return all, hidden
}

// filterHelp is the help while typing a filter.
func (lv *listView[T]) filterHelp() helpKeys {
	k := lv.c.keys
	return helpKeys{short: []key.Binding{k.KeepFilter, k.ClearFilter}, full: [][]key.Binding{{k.KeepFilter, k.ClearFilter}}}
}

// typing reports whether keys go to the filter.
func (lv *listView[T]) typing() bool { return lv.filtering }

// update handles the keys every list knows and reports whether it used
// the message.
func (lv *listView[T]) update(msg tea.Msg) bool {
	k := lv.c.keys
	if lv.filtering {
		if km, ok := msg.(tea.KeyPressMsg); ok {
			switch {
			case key.Matches(km, k.KeepFilter):
				lv.filtering = false
				return true
			case key.Matches(km, k.ClearFilter):
				lv.filtering = false
				lv.filter.Reset()
				lv.apply()
				return true
			}
		}
		before := lv.filter.Value()
		typeInto(&lv.filter, msg)
		if lv.filter.Value() != before {
			lv.apply()
		}
		return true
	}
	km, ok := msg.(tea.KeyPressMsg)
	if !ok {
		return false
	}
	switch {
	case key.Matches(km, k.Filter):
		lv.filtering = true
	case key.Matches(km, k.Back) && lv.filter.Value() != "":
		lv.filter.Reset()
		lv.apply()
	case lv.markable && key.Matches(km, k.Mark):
		if it, ok := lv.selected(); ok {
			kk := lv.key(it)
			lv.marks[kk] = !lv.marks[kk]
			if !lv.marks[kk] {
				delete(lv.marks, kk)
			}
			lv.table.MoveDown(1)
			lv.refreshRows()
		}
	case lv.markable && key.Matches(km, k.MarkAll):
		lv.markAll()
	case lv.sortable && key.Matches(km, k.Sort):
		for {
			lv.sortBy = (lv.sortBy + 1) % len(lv.cols)
			if lv.cols[lv.sortBy].cmp != nil {
				break
			}
		}
		lv.apply()
	case lv.sortable && key.Matches(km, k.Reverse):
		lv.desc = !lv.desc
		lv.apply()
	default:
		before := lv.table.Cursor()
		lv.table, _ = lv.table.Update(msg)
		return lv.table.Cursor() != before || isNav(km, k)
	}
	return true
}

func isNav(km tea.KeyPressMsg, k KeyMap) bool {
	return key.Matches(km, k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom)
}

// markAll marks every row shown, or unmarks them when all already are.
func (lv *listView[T]) markAll() {
	all := len(lv.shown) > 0
	for _, it := range lv.shown {
		all = all && lv.marks[lv.key(it)]
	}
	for _, it := range lv.shown {
		if all {
			delete(lv.marks, lv.key(it))
		} else {
			lv.marks[lv.key(it)] = true
		}
	}
	lv.refreshRows()
}

// refreshRows redraws the rows after marks changed, keeping the cursor.
func (lv *listView[T]) refreshRows() {
	rows := make([]table.Row, len(lv.shown))
	for i, it := range lv.shown {
		rows[i] = lv.row(it)
	}
	lv.table.SetRows(rows)
}

func (lv *listView[T]) setSize(w, h int) {
	lv.width, lv.height = w, h
	lv.table.SetWidth(w)
	lv.table.SetColumns(lv.columns())
	lv.table.SetHeight(max(h-lipgloss.Height(lv.aboveTable()), 2))
}

// setStyles follows a change of background.
func (lv *listView[T]) setStyles() {
	lv.table.SetStyles(lv.c.styles.table())
	lv.filter.SetStyles(lv.c.styles.Input)
}

// aboveTable is what goes over the table: what is shown, and the last
// error, in full because it often says how to fix it.
func (lv *listView[T]) aboveTable() string {
	st := lv.c.styles
	var seg []string
	n := len(lv.items)
	switch {
	case !lv.loaded && lv.err == nil:
		seg = append(seg, "loading…")
	case !lv.loaded:
		seg = append(seg, "no "+lv.noun[1]+" loaded")
	case len(lv.shown) == n:
		seg = append(seg, fmt.Sprintf("%d %s", n, plural(n, lv.noun[0], lv.noun[1])))
	default:
		seg = append(seg, fmt.Sprintf("%d of %d %s", len(lv.shown), n, lv.noun[1]))
	}
	if len(lv.marks) > 0 {
		seg = append(seg, fmt.Sprintf("%d marked", len(lv.marks)))
	}
	if lv.sortable {
		dir := map[bool]string{false: "ascending", true: "descending"}[lv.desc]
		seg = append(seg, "sorted by "+strings.ToLower(lv.cols[lv.sortBy].title)+" "+dir)
	}
	switch {
	case lv.filtering:
		seg = append(seg, "filter: "+lv.filter.View())
	case lv.filter.Value() != "":
		seg = append(seg, "filter: "+lv.filter.Value())
	}
	out := st.Muted.Render(strings.Join(seg, " · "))
	if lv.err != nil {
		out += "\n" + st.Error.Render(wrap("error: "+clean(lv.err.Error()), lv.width))
	}
	return out
}

// render draws the list under a title line.
func (lv *listView[T]) render() string {
	body := lv.table.View()
	if lv.loaded && len(lv.shown) == 0 {
		msg := lv.empty
		if len(lv.items) > 0 {
			msg = "Nothing matches the filter " + lv.filter.Value() + "."
		}
		body = strings.SplitN(body, "\n", 2)[0] + "\n" + lv.c.styles.Muted.Render(" "+msg)
	}
	return lv.aboveTable() + "\n" + body
}
