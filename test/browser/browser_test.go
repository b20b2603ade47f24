package browser_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/source/gittest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the pages' screenshots to docs/screenshots")

// chromium returns the path of the chromium binary; without it the test fails under CI=true and
// is skipped otherwise.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; CI must install it: apt-get install -y chromium")
	}
	t.Skip("chromium is not installed; install it with: apt-get install -y chromium")
	return ""
}

// browser is one headless Chromium with everything its pages reported: console errors,
// exceptions, log errors (CSP violations, failed loads) and dialogs opened.
type browser struct {
	t   *testing.T
	ctx context.Context
	url string

	mu       sync.Mutex
	problems []string
	dialogs  []string
}

func newBrowser(t *testing.T, url string) *browser {
	t.Helper()
	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.UserDataDir(dir), chromedp.WindowSize(1360, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx, url: url}
	b.listen()
	return b
}

// newTab opens another tab of b's browser (the same cookies, so the same session).
func (b *browser) newTab() *browser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a tab: %v", err)
	}
	tab := &browser{t: b.t, ctx: ctx, url: b.url}
	tab.listen()
	return tab
}

// listen records what b's tab reports: console errors, exceptions, log errors and dialogs
// (refused).
func (b *browser) listen() {
	t, ctx := b.t, b.ctx
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	logs := chromedp.Events(ctx, cdplog.EntryAdded)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				b.problem("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			b.problem("exception: %s", (&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error())
		}
	}()
	go func() {
		for ev, err := range logs {
			if err != nil {
				return
			}
			if ev.Entry.Level == cdplog.EntryLevelError {
				b.problem("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
	}()
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// do runs actions with a time limit.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it is true, across navigations.
func (b *browser) waitFor(what, cond string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(10*time.Millisecond)))
		if err == nil {
			return
		}
		if ctx.Err() == nil && (strings.Contains(err.Error(), "navigated") || strings.Contains(err.Error(), "Cannot find context")) {
			time.Sleep(20 * time.Millisecond) // a form submission is loading the next page
			continue
		}
		html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('main') ? document.getElementById('main').innerText : document.body.innerText`))
		b.t.Fatalf("%s: %v\npage text:\n%s", what, err, html)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.url+path))
}

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.open("/ui/login")
	b.do("sign in", chromedp.SendKeys(chromedp.ID("token"), token), chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("user")))
	if html := eval[string](b, `document.documentElement.outerHTML + document.cookie`); strings.Contains(html, token) || strings.Contains(html, strings.TrimPrefix(token, "flt_")) {
		b.t.Fatal("the page or a script-readable cookie contains the API token")
	}
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/ui/logout"] button`)), chromedp.WaitVisible(chromedp.ID("token")))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv("FLOTILLA_SCREENSHOTS")
	if *updateScreenshots {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	if dir == "" {
		dir = b.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// checkClean fails on any console error, exception, failed load or dialog, except loads of the
// URLs a test expected to be refused (403) or answered with a form's error (422).
func (b *browser) checkClean(refused ...string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		if slices.ContainsFunc(refused, func(u string) bool {
			return strings.Contains(p, u) && (strings.Contains(p, "403") || strings.Contains(p, "422"))
		}) {
			continue
		}
		b.t.Errorf("browser reported: %s", p)
	}
	for _, d := range b.dialogs {
		b.t.Errorf("a dialog opened (script ran): %q", d)
	}
}

func TestDashboardInChromium(t *testing.T) {
	chromium(t)
	s := startServer(t)
	clusters := []string{"eu-canary", "eu-1", "eu-2", "eu-3", "eu-4", "us-1", "us-2", "us-3", "us-4", "us-5"}
	agents := seed(t, s, clusters)
	hostileLabel(t, s, "eu-2")
	now := time.Now().UTC()
	putRolloutSpec(t, s, "web-6", canarySpec("web-6"), liveStatus(now, "canary step 1 of 2: analysing at 5% traffic"))
	renderedRelease(t, s, "web-7", clusters)
	approvalRollout(t, s, "web-7-hotfix")
	b := newBrowser(t, s.url)

	// Unauthenticated: the sign-in form, then the fleet.
	b.open("/ui/")
	b.do("the sign-in form", chromedp.WaitVisible(chromedp.ID("token")))
	b.signIn(s.tokens["deployer"])
	b.waitFor("the fleet lists every cluster", fmt.Sprintf(`document.querySelectorAll('#fleet tbody tr').length === %d`, len(clusters)), 10*time.Second)
	for _, c := range clusters {
		if !eval[bool](b, fmt.Sprintf(`!!document.querySelector('#fleet tr[data-cluster=%q] a')`, c)) {
			t.Errorf("the fleet does not list %s", c)
		}
	}
	if got := eval[string](b, `document.querySelector('#fleet tr[data-cluster="eu-canary"]').innerText`); !strings.Contains(got, "web-6") || !strings.Contains(got, "Ready") {
		t.Errorf("eu-canary's row does not show its agent and release: %q", got)
	}
	// The hostile label is text: its characters are shown, no element or script came of it.
	label := eval[string](b, `Array.from(document.querySelectorAll('#fleet tr[data-cluster="eu-2"] .label')).map(e => e.textContent).join('|')`)
	if !strings.Contains(label, "note="+hostile) {
		t.Errorf("the hostile label is not shown as text: %q", label)
	}
	if n := eval[int](b, `document.querySelectorAll('main img, main script, main a[href^="javascript"]').length`); n != 0 {
		t.Errorf("%d elements came from hostile text", n)
	}
	if v := eval[string](b, `document.body.dataset.pwned || ''`); v != "" {
		t.Errorf("hostile script ran (pwned=%s)", v)
	}
	b.screenshot("fleet")

	// The fleet page follows agent reports live.
	if _, err := agents["us-5"].client.PostStatus(context.Background(), agents["us-5"].epoch, v1.AgentStatusReport{Seq: 2, Health: v1.HealthFailed,
		Services: []v1.ServiceReport{{Service: "web", Release: "web-5", Health: v1.HealthFailed}}}); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the fleet shows us-5 failing", `document.querySelector('#fleet tr[data-cluster="us-5"]').innerText.includes('Failed')`, 10*time.Second)

	// Filter by label.
	b.open("/ui/?selector=region%3Dus")
	b.waitFor("the label filter", `document.querySelectorAll('#fleet tbody tr').length === 5`, 10*time.Second)

	b.open("/ui/clusters/eu-2")
	b.waitFor("the cluster page", `document.getElementById('cluster-name').textContent === 'eu-2'`, 10*time.Second)
	if got := eval[string](b, `document.getElementById('annotations').textContent`); !strings.Contains(got, hostile) {
		t.Errorf("the hostile annotation is not shown as text: %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll('.agent-error').length`); n != 1 {
		t.Errorf("%d agent errors shown, want 1", n)
	}
	b.screenshot("cluster")

	b.open("/ui/services/web")
	b.waitFor("the service page", `document.querySelectorAll('#releases tbody tr').length === 7`, 10*time.Second)
	if got := eval[string](b, `document.querySelector('#releases tr[data-release="web-6"]').innerText`); !strings.Contains(got, "eu-canary") || !strings.Contains(got, "Ada") {
		t.Errorf("web-6's row does not say who wrote it and where it runs: %q", got)
	}
	b.screenshot("service")

	b.open("/ui/kpis?period=30d")
	b.waitFor("the KPI page", `document.getElementById('kpi-cfr').textContent === '20.0%'`, 10*time.Second)
	b.screenshot("kpis")

	b.open("/ui/audit")
	b.waitFor("the audit page", `document.querySelectorAll('#audit tbody tr').length > 10`, 10*time.Second)
	b.screenshot("audit")

	// A rollout page updates live: each status write shows without a reload.
	b.open("/ui/rollouts/web-6")
	b.waitFor("the rollout page", `!!document.querySelector('#main svg.chart')`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll('#main svg.chart line.threshold').length`); n != 2 {
		t.Errorf("%d metric charts with a threshold, want 2", n)
	}
	if got := eval[string](b, `document.getElementById('strategy').textContent`); got != "canary (inline)" {
		t.Errorf("the strategy of web-6 shows as %q, want canary (inline)", got)
	}
	b.screenshot("rollout")
	eval[bool](b, `window.__loads = (window.__loads||0) + 1; true`)
	var lat []time.Duration
	for i := 1; i <= 10; i++ {
		msg := fmt.Sprintf("live update %d", i)
		eval[bool](b, `window.__seen = 0; true`)
		start := time.Now()
		putRolloutSpec(t, s, "web-6", canarySpec("web-6"), liveStatus(now, msg))
		b.waitFor("live update "+msg, fmt.Sprintf(`(() => { const m = document.getElementById('message'); return !!m && m.textContent === %q })()`, msg), 10*time.Second)
		lat = append(lat, time.Since(start))
	}
	if loads := eval[int](b, `window.__loads`); loads != 1 {
		t.Errorf("the page reloaded (%d loads); live updates must not reload", loads)
	}
	slices.Sort(lat)
	t.Logf("SSE update latency, status write returned to page showing it, %d writes: median %v, max %v", len(lat), lat[len(lat)/2], lat[len(lat)-1])

	// The approve button releases the approval gate, and the page shows it live.
	b.open("/ui/rollouts/web-7-hotfix")
	b.waitFor("the waiting rollout", `document.getElementById('phase').textContent === 'WaitingApproval'`, 10*time.Second)
	b.screenshot("rollout-approval")
	eval[bool](b, `window.__before = 1; true`)
	b.do("approve", chromedp.Click(chromedp.ID("btn-approve")))
	b.waitFor("the gate released", `!window.__before && !!document.getElementById('phase') && document.getElementById('phase').textContent !== 'WaitingApproval' && document.getElementById('gates').innerText.includes('Passed')`, 10*time.Second)
	obj, err := s.admin.Get(context.Background(), v1.KindRollout, "web-7-hotfix")
	if err != nil {
		t.Fatal(err)
	}
	if st := obj.(*v1.Rollout).Status; st.WaitingFor != nil || len(st.Gates) == 0 || st.Gates[0].Phase != v1.GatePassed || !strings.Contains(st.Gates[0].ApprovedBy, "deployer") {
		t.Errorf("after approve: %+v", st)
	}

	releaseFromTheServicePage(t, s, b)
	retryFromTheRolloutPage(t, s, b)

	// A viewer sees no action button, and a forged POST is refused.
	approvalRollout(t, s, "web-7-second")
	b.signOut()
	b.signIn(s.tokens["viewer"])
	b.open("/ui/rollouts/web-7-second")
	b.waitFor("the waiting rollout as a viewer", `document.getElementById('phase').textContent === 'WaitingApproval'`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll('[id^="btn-"]').length`); n != 0 {
		t.Errorf("a viewer sees %d action buttons", n)
	}
	var refused []string
	for _, action := range []string{"approve", "pause", "abort"} {
		u := "/ui/rollouts/web-7-second/" + action
		refused = append(refused, u)
		code := eval[int](b, fmt.Sprintf(`fetch(%q, {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'},
			body: 'csrf=' + encodeURIComponent(document.querySelector('input[name=csrf]').value)}).then(r => r.status)`, u))
		if code != 403 {
			t.Errorf("a viewer's forged %s: %d, want 403", action, code)
		}
	}
	obj, err = s.admin.Get(context.Background(), v1.KindRollout, "web-7-second")
	if err != nil {
		t.Fatal(err)
	}
	if ph := obj.(*v1.Rollout).Status.Phase; ph != v1.RolloutWaitingApproval {
		t.Errorf("a viewer's forged request changed the rollout to %s", ph)
	}
	b.checkClean(append(refused, "/ui/services/catalog")...)
}

// releaseFromTheServicePage releases a service whose source is a real Git repository (file://)
// with the service page's form, as the signed-in deployer of b: the form starts from the
// source's branch, the page names the release made, and another tab on the same page lists it
// live. A ref that does not resolve shows the server's error as text.
func releaseFromTheServicePage(t *testing.T, s *server, b *browser) {
	t.Helper()
	ctx := context.Background()
	repo := gittest.NewRepo(t, "catalog.git")
	cm := func(v string) map[string]string {
		return map[string]string{"deploy/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: catalog}\ndata: {v: \"" + v + "\"}\n"}
	}
	repo.Commit(t, "catalog: first", cm("1"))
	objs := []v1.Object{
		&v1.Source{Metadata: v1.ObjectMeta{Name: "catalog"}, Spec: v1.SourceSpec{Git: &v1.GitSource{URL: repo.FileURL(), Ref: v1.GitRef{Branch: "main"}, Interval: "10m"}}},
		&v1.Service{Metadata: v1.ObjectMeta{Name: "catalog"}, Spec: v1.ServiceSpec{Source: v1.ServiceSource{Name: "catalog", Path: "deploy"},
			Placement: v1.Placement{ClusterSelector: &v1.LabelSelector{MatchLabels: map[string]string{"ring": "canary"}}}}},
	}
	for _, o := range objs {
		o.Default()
	}
	if _, err := s.admin.Apply(ctx, objs); err != nil {
		t.Fatalf("apply the catalog service: %v", err)
	}
	// The source controller releases the branch's first commit; the second waits for the next
	// poll, ten minutes away, or for a person.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		o, err := s.admin.Get(ctx, v1.KindService, "catalog")
		if err != nil {
			t.Fatal(err)
		}
		if o.(*v1.Service).Status.LatestRelease != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source controller did not release the first commit: %+v", o.(*v1.Service).Status)
		}
	}
	second := repo.Commit(t, "catalog: second", cm("2"))

	watcher := b.newTab()
	watcher.open("/ui/services/catalog")
	watcher.waitFor("the catalog's first release", `document.querySelectorAll('#releases tbody tr[data-release]').length === 1`, 10*time.Second)
	eval[bool](watcher, `window.__before = 1; true`)

	b.open("/ui/services/catalog")
	b.waitFor("the release form", `!!document.getElementById('release-ref')`, 10*time.Second)
	if ref := eval[string](b, `document.getElementById('release-ref').value`); ref != "main" {
		t.Errorf("the release form starts from %q, want the source's branch main", ref)
	}
	b.do("create a release", chromedp.Click(chromedp.ID("btn-release")))
	b.waitFor("the release made", `!!document.getElementById('release-result') && document.getElementById('release-result').textContent.includes('Created release')`, 30*time.Second)
	name := eval[string](b, `document.getElementById('release-name').textContent`)
	o, err := s.admin.Get(ctx, v1.KindRelease, name)
	if err != nil {
		t.Fatalf("the page names release %q: %v", name, err)
	}
	if rel := o.(*v1.Release); rel.Spec.Commit.SHA != second || rel.Spec.Service != "catalog" {
		t.Errorf("release %s is of %s at %s, want catalog at %s", name, rel.Spec.Service, rel.Spec.Commit.SHA, second)
	}
	watcher.waitFor("the other tab lists the release live", fmt.Sprintf(`window.__before === 1 && !!document.querySelector('#releases tr[data-release=%q]')`, name), 10*time.Second)
	b.screenshot("service-release")

	bad := "tag:no-such-tag " + hostile
	b.do("a ref that does not resolve", chromedp.SetValue(chromedp.ID("release-ref"), bad), chromedp.Click(chromedp.ID("btn-release")))
	b.waitFor("the error", `!!document.querySelector('#release-result.error')`, 30*time.Second)
	if got := eval[string](b, `document.getElementById('release-result').textContent`); !strings.Contains(got, "no-such-tag") {
		t.Errorf("the error does not name the ref: %q", got)
	}
	if n := eval[int](b, `document.querySelectorAll('#release-form img, #release-form script, #release-form a').length`); n != 0 {
		t.Errorf("%d elements came from the ref in the error", n)
	}
	if v := eval[string](b, `document.body.dataset.pwned || ''`); v != "" {
		t.Errorf("hostile script ran (pwned=%s)", v)
	}
	watcher.checkClean()
}

// retryFromTheRolloutPage: no retry on a rollout that succeeded; on one that rolled back, the
// button starts a new rollout of its release and shows it.
func retryFromTheRolloutPage(t *testing.T, s *server, b *browser) {
	t.Helper()
	b.open("/ui/rollouts/web-5")
	b.waitFor("the succeeded rollout", `document.getElementById('phase').textContent === 'Succeeded'`, 10*time.Second)
	if n := eval[int](b, `document.querySelectorAll('[id^="btn-"]').length`); n != 0 {
		t.Errorf("a succeeded rollout offers %d actions", n)
	}
	b.open("/ui/rollouts/web-3")
	b.waitFor("the rolled back rollout", `document.getElementById('phase').textContent === 'RolledBack'`, 10*time.Second)
	if got := eval[string](b, `Array.from(document.querySelectorAll('[id^="btn-"]')).map(e => e.id).join(' ')`); got != "btn-retry" {
		t.Fatalf("a rolled back rollout offers %q, want btn-retry", got)
	}
	b.do("retry", chromedp.Click(chromedp.ID("btn-retry")))
	b.waitFor("the new rollout", `!!document.getElementById('rollout-name') && document.getElementById('rollout-name').textContent === 'web-3-retry2'`, 10*time.Second)
	o, err := s.admin.Get(context.Background(), v1.KindRollout, "web-3-retry2")
	if err != nil {
		t.Fatal(err)
	}
	if ro := o.(*v1.Rollout); ro.Spec.Release != "web-3" {
		t.Errorf("the retry rolls out %s, want web-3", ro.Spec.Release)
	}
}
