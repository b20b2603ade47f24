package client

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "flotilla.dev/flotilla/api/v1"
)

func TestReadEvents(t *testing.T) {
	stream := ": watching after 0\nretry: 1000\n\n" +
		"id: 1\nevent: Created\ndata: {\"seq\":1}\n\n" +
		": heartbeat 1\n\n" +
		"id: 2\nevent: Updated\ndata: {\"seq\":2,\ndata: \"kind\":\"Cluster\"}\n\n" +
		"id: 3\nevent: Deleted\ndata:{\"seq\":3}\n\n" +
		"id: 4\nevent: Created\ndata: {\"seq\":4}" // cut mid-event: never dispatched
	type got struct{ ID, Type, Data string }
	var evs []got
	err := readEvents(strings.NewReader(stream), func(id, typ, data string) error {
		evs = append(evs, got{id, typ, data})
		return nil
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("readEvents at the end of the stream = %v, want io.ErrUnexpectedEOF", err)
	}
	want := []got{
		{"1", "Created", `{"seq":1}`},
		{"2", "Updated", "{\"seq\":2,\n\"kind\":\"Cluster\"}"},
		{"3", "Deleted", `{"seq":3}`},
	}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestErrorHelpers(t *testing.T) {
	mk := func(code int, reason string) error {
		return &APIError{Method: "GET", Path: "/x", Status: v1.Status{Code: code, Reason: reason, Message: "m"}}
	}
	cases := []struct {
		err  error
		is   func(error) bool
		want bool
	}{
		{mk(404, v1.ReasonNotFound), IsNotFound, true},
		{mk(409, v1.ReasonConflict), IsConflict, true},
		{mk(409, v1.ReasonAlreadyExists), IsAlreadyExists, true},
		{mk(409, v1.ReasonConflict), IsAlreadyExists, false},
		{mk(422, v1.ReasonInvalid), IsInvalid, true},
		{mk(401, v1.ReasonUnauthorized), IsUnauthorized, true},
		{mk(403, v1.ReasonForbidden), IsForbidden, true},
		{mk(413, v1.ReasonTooLarge), IsTooLarge, true},
		{mk(400, v1.ReasonBadRequest), IsBadRequest, true},
		{mk(403, v1.ReasonForbidden), IsNotFound, false},
		{errors.New("dial tcp: refused"), IsNotFound, false},
	}
	for i, c := range cases {
		if got := c.is(c.err); got != c.want {
			t.Errorf("case %d (%v): got %v, want %v", i, c.err, got, c.want)
		}
	}
	wrapped := errors.Join(errors.New("context"), mk(404, v1.ReasonNotFound))
	if !IsNotFound(wrapped) {
		t.Error("IsNotFound does not see through wrapping")
	}
	e := &APIError{Status: v1.Status{Code: 422, Message: "Service web: invalid", Fields: []v1.FieldError{{Path: "spec.x", Message: "required"}}}}
	if got := e.Error(); got != "Service web: invalid\n  spec.x: required" {
		t.Errorf("Error() = %q", got)
	}
}

func TestNewRejectsBadServerURLs(t *testing.T) {
	for _, s := range []string{"", "127.0.0.1:8080", "ftp://x", "http://"} {
		if _, err := New(Options{Server: s}); err == nil {
			t.Errorf("New(%q) succeeded, want an error", s)
		}
	}
	c, err := New(Options{Server: "http://127.0.0.1:8080/"})
	if err != nil || c.Server() != "http://127.0.0.1:8080" {
		t.Errorf("New = %v, %v; want the URL without a trailing slash", c, err)
	}
}
