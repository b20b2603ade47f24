package deploy

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func lines(s string) []string {
	l := strings.SplitAfter(s, "\n")
	if n := len(l); n > 0 && l[n-1] == "" {
		l = l[:n-1]
	}
	return l
}

// TestUnifiedDiffAppliesWithPatch checks the diff's hunks against the patch
// command: applying the diff of a to b to a must give b, for random edits
// of a text, including changes at both ends and far-apart changes.
func TestUnifiedDiffAppliesWithPatch(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("patch is not installed; CI must install it (apt-get install -y patch)")
		}
		t.Skip("patch is not installed (apt-get install -y patch)")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		var a []string
		for j := range 5 + rng.IntN(40) {
			a = append(a, "line "+string(rune('a'+j%26))+"\n")
		}
		b := append([]string(nil), a...)
		for range 1 + rng.IntN(6) {
			k := rng.IntN(len(b) + 1)
			switch rng.IntN(3) {
			case 0:
				b = append(b[:k], append([]string{"new\n"}, b[k:]...)...)
			case 1:
				if k < len(b) {
					b = append(b[:k], b[k+1:]...)
				}
			default:
				if k < len(b) {
					b[k] = "changed\n"
				}
			}
		}
		d := unifiedDiff("a", "b", a, b)
		if equalLines(a, b) {
			if d != "" {
				t.Fatalf("case %d: diff of equal texts: %q", i, d)
			}
			continue
		}
		dir := t.TempDir()
		fa := filepath.Join(dir, "f")
		if err := os.WriteFile(fa, []byte(strings.Join(a, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("patch", "-s", "-u", fa)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch: %v\n%s\ndiff:\n%s", i, err, out, d)
		}
		got, _ := os.ReadFile(fa)
		if string(got) != strings.Join(b, "") {
			t.Fatalf("case %d: patched text differs\ndiff:\n%s\ngot:\n%s\nwant:\n%s", i, d, got, strings.Join(b, ""))
		}
	}
}

func TestUnifiedDiffAddedAndRemoved(t *testing.T) {
	d := unifiedDiff("/dev/null", "b", nil, lines("x\ny\n"))
	want := "--- /dev/null\n+++ b\n@@ -0,0 +1,2 @@\n+x\n+y\n"
	if d != want {
		t.Errorf("added file:\n%s\nwant:\n%s", d, want)
	}
}
