package v1

import (
	"fmt"
	"strings"
	"time"
)

// Schedule is a parsed time-window expression. Two forms exist:
//
//   - weekly: "[DAYS] [HH:MM-HH:MM]" where DAYS is a comma-separated list of
//     days or day ranges ("Mon-Fri", "Sat,Sun", "Mon-Wed,Fri"); at least one
//     part is given, and a time range may wrap past midnight ("22:00-06:00",
//     counted from the listed day);
//   - dates: "YYYY-MM-DD" or "YYYY-MM-DD/YYYY-MM-DD", inclusive.
type Schedule struct {
	dates            bool
	fromDate, toDate time.Time // civil dates (UTC midnight) when dates
	days             [7]bool   // indexed by time.Weekday
	from, to         int       // minutes after midnight; from == to means all day
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseSchedule parses a window expression (see Schedule).
func ParseSchedule(s string) (Schedule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Schedule{}, fmt.Errorf("empty schedule")
	}
	if s[0] >= '0' && s[0] <= '9' && strings.Count(s, "-") >= 2 {
		return parseDates(s)
	}
	var sc Schedule
	fields := strings.Fields(s)
	if len(fields) > 2 {
		return Schedule{}, fmt.Errorf("schedule %q: want \"[DAYS] [HH:MM-HH:MM]\" or \"YYYY-MM-DD[/YYYY-MM-DD]\"", s)
	}
	dayPart, timePart := "", ""
	switch {
	case len(fields) == 2:
		dayPart, timePart = fields[0], fields[1]
	case strings.Contains(fields[0], ":"):
		timePart = fields[0]
	default:
		dayPart = fields[0]
	}
	if dayPart == "" {
		for i := range sc.days {
			sc.days[i] = true
		}
	} else if err := sc.parseDays(dayPart); err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: %w", s, err)
	}
	if timePart != "" {
		a, b, ok := strings.Cut(timePart, "-")
		if !ok {
			return Schedule{}, fmt.Errorf("schedule %q: time range %q must be HH:MM-HH:MM", s, timePart)
		}
		var err error
		if sc.from, err = parseClock(a); err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: %w", s, err)
		}
		if sc.to, err = parseClock(b); err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: %w", s, err)
		}
		if sc.from == sc.to {
			return Schedule{}, fmt.Errorf("schedule %q: time range is empty", s)
		}
	}
	return sc, nil
}

func (sc *Schedule) parseDays(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, ok := weekdays[strings.ToLower(a)]
		if !ok {
			return fmt.Errorf("unknown day %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", a)
		}
		to := from
		if isRange {
			if to, ok = weekdays[strings.ToLower(b)]; !ok {
				return fmt.Errorf("unknown day %q (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)", b)
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			sc.days[d] = true
			if d == to {
				break
			}
		}
	}
	return nil
}

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * 60, nil
		}
		return 0, fmt.Errorf("time %q must be HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func parseDates(s string) (Schedule, error) {
	a, b, isRange := strings.Cut(s, "/")
	from, err := time.Parse(time.DateOnly, a)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule %q: date %q must be YYYY-MM-DD", s, a)
	}
	to := from
	if isRange {
		if to, err = time.Parse(time.DateOnly, b); err != nil {
			return Schedule{}, fmt.Errorf("schedule %q: date %q must be YYYY-MM-DD", s, b)
		}
		if to.Before(from) {
			return Schedule{}, fmt.Errorf("schedule %q: ends before it starts", s)
		}
	}
	return Schedule{dates: true, fromDate: from, toDate: to}, nil
}

// Contains reports whether t, seen in loc, falls inside the schedule.
func (sc Schedule) Contains(t time.Time, loc *time.Location) bool {
	t = t.In(loc)
	if sc.dates {
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return !d.Before(sc.fromDate) && !d.After(sc.toDate)
	}
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	switch {
	case sc.from == sc.to: // whole days
		return sc.days[day]
	case sc.from < sc.to:
		return sc.days[day] && m >= sc.from && m < sc.to
	default: // wraps past midnight: the late part belongs to the listed day
		return (sc.days[day] && m >= sc.from) || (sc.days[(day+6)%7] && m < sc.to)
	}
}
