package dashboard

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

func (d *Dashboard) funcs() template.FuncMap {
	return template.FuncMap{
		"ts": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				if v.IsZero() {
					return "-"
				}
				return v.UTC().Format("2006-01-02 15:04:05Z")
			case *time.Time:
				if v == nil || v.IsZero() {
					return "-"
				}
				return v.UTC().Format("2006-01-02 15:04:05Z")
			}
			return "-"
		},
		"ago": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return "never"
			}
			return duration(d.opts.Now().Sub(*t).Seconds()) + " ago"
		},
		"short": func(s string) string {
			if len(s) > 10 {
				return s[:10]
			}
			return s
		},
		"firstLine": func(s string) string {
			line, _, _ := strings.Cut(s, "\n")
			return line
		},
		"pct": func(f *float64) string {
			if f == nil {
				return "-"
			}
			return fmt.Sprintf("%.1f%%", *f*100)
		},
		"dur": func(f *float64) string {
			if f == nil {
				return "-"
			}
			return duration(*f)
		},
		"perDay": func(f float64) string { return fmt.Sprintf("%.2f", f) },
		"num":    num,
		"fnum": func(f *float64) string {
			if f == nil {
				return "-"
			}
			return num(*f)
		},
		"join":  strings.Join,
		"lower": strings.ToLower,
		"idx": func(i int) string {
			if i < 0 {
				return "-"
			}
			return fmt.Sprint(i + 1)
		},
		"stepOf": func(s *int) string {
			if s == nil {
				return ""
			}
			return fmt.Sprintf(" %d", *s+1)
		},
		"drifted": func(objs []v1.ObjectReport) int {
			n := 0
			for _, o := range objs {
				if o.Drifted {
					n++
				}
			}
			return n
		},
		"kinds": func() []string {
			out := []string{}
			for _, k := range v1.Kinds() {
				out = append(out, k.Kind)
			}
			return append(out, "Token", "AgentCredential", "Assignments", "Bundle", "AgentStatus", "RolloutAudit")
		},
		"sinceOptions": func() []string { return []string{"1h", "24h", "7d", "30d", "all"} },
		"svc":          func(m map[string]ServiceState, name string) ServiceState { return m[name] },
		"terminal":     func(p v1.RolloutPhase) bool { return p.Terminal() },
		"commitTime":   func(c v1.Commit) *time.Time { return c.Time },
	}
}
