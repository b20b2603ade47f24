package haproxy

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const stateAnswer = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 web 1 a 127.0.0.1 2 8 50 100 0 1 0 2 0 0 0 0 - 19081 - 0 0 - - 0
3 web 2 b 127.0.0.1 2 0 100 100 1 1 0 2 0 0 0 0 - 19082 - 0 0 - - 0
3 web 3 c 127.0.0.1 2 1 30 100 1 1 0 2 0 0 0 0 - 19083 - 0 0 - - 0

`

func TestParseServersState(t *testing.T) {
	got, err := ParseServersState(stateAnswer)
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerState{
		{Backend: "web", Name: "a", Address: "127.0.0.1", OpState: 2, AdminState: 8, Weight: 50, InitialWeight: 100},
		{Backend: "web", Name: "b", Address: "127.0.0.1", OpState: 2, AdminState: 0, Weight: 100, InitialWeight: 100},
		{Backend: "web", Name: "c", Address: "127.0.0.1", OpState: 2, AdminState: 1, Weight: 30, InitialWeight: 100},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if !got[0].Draining() || got[0].Effective() != 0 {
		t.Errorf("a drains: Draining %v Effective %d", got[0].Draining(), got[0].Effective())
	}
	if got[1].Draining() || got[1].Maintenance() || got[1].Effective() != 100 {
		t.Errorf("b is ready at 100: %+v", got[1])
	}
	if !got[2].Maintenance() || got[2].Effective() != 0 {
		t.Errorf("c is in maintenance: %+v", got[2])
	}
}

func TestParseServersStateColumnsByName(t *testing.T) {
	// A future HAProxy may reorder or add columns.
	got, err := ParseServersState("1\n# srv_name extra be_name srv_addr srv_op_state srv_admin_state srv_iweight srv_uweight\nx ? web 10.0.0.1 2 0 100 7\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "x" || got[0].Weight != 7 || got[0].InitialWeight != 100 {
		t.Fatalf("got %+v", got)
	}
}

func TestParseServersStateRejects(t *testing.T) {
	for name, in := range map[string]string{
		"unknown backend": "Can't find backend.\n\n",
		"empty":           "",
		"no header":       "1\n3 web 1 a 127.0.0.1 2 0 1 1\n",
		"missing column":  "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight\nweb a 1.1.1.1 2 0 1\n",
		"short line":      "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\nweb a 1.1.1.1 2 0\n",
		"not a number":    "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\nweb a 1.1.1.1 2 0 many 1\n",
		"other version":   "2\n# be_name srv_name\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseServersState(in)
			if !errors.Is(err, ErrUnexpectedAnswer) {
				t.Fatalf("error %v, want ErrUnexpectedAnswer", err)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	for in, want := range map[string]string{
		"unix:///run/haproxy/admin.sock": "unix:///run/haproxy/admin.sock",
		"tcp://127.0.0.1:9999":           "tcp://127.0.0.1:9999",
		"tcp://[::1]:9999":               "tcp://[::1]:9999",
	} {
		c, err := NewClient(in)
		if err != nil || c.String() != want {
			t.Errorf("NewClient(%q) = %v, %v", in, c, err)
		}
	}
	for _, bad := range []string{"", "unix://relative", "tcp://nohost", "http://x:1", "::"} {
		if _, err := NewClient(bad); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

func FuzzParseServersState(f *testing.F) {
	f.Add(stateAnswer)
	f.Add("1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\nweb a 1.1.1.1 2 0 1 1\n")
	f.Add("Can't find backend.\n")
	f.Fuzz(func(t *testing.T, in string) {
		states, err := ParseServersState(in)
		if err != nil && !errors.Is(err, ErrUnexpectedAnswer) {
			t.Fatalf("error %v is not ErrUnexpectedAnswer", err)
		}
		for _, s := range states {
			if s.Name == "" || s.Backend == "" {
				t.Fatalf("parsed a server without a name: %+v", s)
			}
		}
	})
}
