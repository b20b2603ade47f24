package deploy

import (
	"fmt"
	"strings"
)

// maxDiffCells bounds the LCS table of one object's diff; beyond it the
// object is shown as wholly removed and added.
const maxDiffCells = 4_000_000

type op struct {
	kind byte // ' ', '-', '+'
	line string
}

// unifiedDiff returns the unified diff (3 lines of context) of two texts
// given as lines that keep their "\n"; "" when they are equal.
func unifiedDiff(aName, bName string, a, b []string) string {
	if equalLines(a, b) {
		return ""
	}
	ops := editScript(a, b)
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", aName, bName)
	const ctx = 3
	// Walk the script, cutting hunks around changes.
	i := 0
	ai, bi := 1, 1 // line numbers of ops[i]
	for i < len(ops) {
		// find next change
		j := i
		aj, bj := ai, bi
		for j < len(ops) && ops[j].kind == ' ' {
			j++
			aj++
			bj++
		}
		if j == len(ops) {
			break
		}
		start := max(j-ctx, i)
		as, bs := aj-(j-start), bj-(j-start)
		// extend the hunk while changes are within 2*ctx of each other
		end := j
		for {
			for end < len(ops) && ops[end].kind != ' ' {
				end++
			}
			k := end
			for k < len(ops) && ops[k].kind == ' ' && k-end < 2*ctx {
				k++
			}
			if k < len(ops) && ops[k].kind != ' ' {
				end = k
				continue
			}
			end = min(end+ctx, len(ops))
			break
		}
		var body strings.Builder
		na, nb := 0, 0
		for _, o := range ops[start:end] {
			body.WriteByte(o.kind)
			body.WriteString(o.line)
			if !strings.HasSuffix(o.line, "\n") {
				body.WriteString("\n\\ No newline at end of file\n")
			}
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		if na == 0 {
			as--
		}
		if nb == 0 {
			bs--
		}
		fmt.Fprintf(&sb, "@@ -%d,%d +%d,%d @@\n", as, na, bs, nb)
		sb.WriteString(body.String())
		for _, o := range ops[i:end] {
			if o.kind != '+' {
				ai++
			}
			if o.kind != '-' {
				bi++
			}
		}
		i = end
	}
	return sb.String()
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// editScript returns a shortest edit script from a to b by longest common
// subsequence, deletions before insertions within a change.
func editScript(a, b []string) []op {
	n, m := len(a), len(b)
	if n*m > maxDiffCells {
		ops := make([]op, 0, n+m)
		for _, l := range a {
			ops = append(ops, op{'-', l})
		}
		for _, l := range b {
			ops = append(ops, op{'+', l})
		}
		return ops
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i++
			j++
		case j == m || (i < n && lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	return ops
}
