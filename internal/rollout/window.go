package rollout

import (
	"fmt"
	"sync"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// windowScan bounds how far ahead the engine looks for the next moment a
// wave may start; beyond it the rollout re-checks when its timer fires.
const windowScan = 8 * 24 * time.Hour

// locations caches time zones: loading one reads the system's zone
// database once per process, never again during a transition.
var locations sync.Map // string -> *time.Location

func location(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	locations.Store(name, l)
	return l, nil
}

func checkWindow(w v1.TimeWindow) error {
	if (w.Allow == "") == (w.Deny == "") {
		return fmt.Errorf("must set exactly one of allow or deny")
	}
	expr := w.Allow + w.Deny
	if _, err := v1.ParseSchedule(expr); err != nil {
		return err
	}
	_, err := location(w.TimeZone)
	return err
}

type window struct {
	allow bool
	sc    v1.Schedule
	loc   *time.Location
	expr  string
}

func compileWindows(ws []v1.TimeWindow) []window {
	out := make([]window, 0, len(ws))
	for _, w := range ws {
		sc, err := v1.ParseSchedule(w.Allow + w.Deny)
		loc, lerr := location(w.TimeZone)
		if err != nil || lerr != nil {
			continue // rejected by NewPlan; a stored plan cannot hold one
		}
		expr := w.Allow + w.Deny
		if w.TimeZone != "" {
			expr += " " + w.TimeZone
		}
		out = append(out, window{allow: w.Allow != "", sc: sc, loc: loc, expr: expr})
	}
	return out
}

// windowBlock says why t is outside the windows ("" when a wave may start).
func windowBlock(ws []window, t time.Time) string {
	hasAllow, inAllow := false, false
	for _, w := range ws {
		in := w.sc.Contains(t, w.loc)
		if w.allow {
			hasAllow = true
			inAllow = inAllow || in
		} else if in {
			return "inside deny window " + w.expr
		}
	}
	if hasAllow && !inAllow {
		return "outside every allow window"
	}
	return ""
}

// nextOpening returns the first minute boundary after now at which a wave
// may start, or now+windowScan when none comes sooner. Schedules have
// minute resolution in every zone, so minute steps are exact.
func nextOpening(ws []window, now time.Time) time.Time {
	t := now.Truncate(time.Minute).Add(time.Minute)
	end := now.Add(windowScan)
	for ; t.Before(end); t = t.Add(time.Minute) {
		if windowBlock(ws, t) == "" {
			return t
		}
	}
	return end
}
