package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"flotilla.dev/flotilla/internal/agent/health"
	"flotilla.dev/flotilla/internal/testfleet"
	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

func TestApplyCreateUpdateSkipOnEveryCluster(t *testing.T) {
	f := testfleet.Get(t)
	ns := f.Namespace(t)
	for _, c := range f.Clusters {
		t.Run(c.Name, func(t *testing.T) {
			e := newEngine(t, c)
			objs := []*unstructured.Unstructured{
				configMap(ns, "b", map[string]any{"k": "1"}),
				configMap(ns, "a", map[string]any{"k": "1"}),
				configMap(ns, "c", map[string]any{"k": "1"}),
			}
			req := Request{Service: ns, Release: "r1", Objects: objs}
			cs := mustApply(t, e, req)
			a, b, cc := "ConfigMap/"+ns+"/a", "ConfigMap/"+ns+"/b", "ConfigMap/"+ns+"/c"
			wantActions(t, cs, map[string]Action{a: Created, b: Created, cc: Created})
			if got := cs.Changes[0].Object.Name; got != "a" {
				t.Errorf("first change is %s, want a (stable order)", got)
			}
			if objs[0].GetLabels() != nil {
				t.Errorf("Apply modified the caller's object: labels %v", objs[0].GetLabels())
			}
			live, _ := getCM(t, c, ns, "a")
			if live.GetLabels()[LabelManagedBy] != ManagedByValue || live.GetAnnotations()[AnnotationService] != ns {
				t.Errorf("live object not stamped: labels %v annotations %v", live.GetLabels(), live.GetAnnotations())
			}

			// Nothing changed: no request at all.
			wantActions(t, mustApply(t, e, req), map[string]Action{a: Skipped, b: Skipped, cc: Skipped})

			// One object changed.
			req.Objects = []*unstructured.Unstructured{
				configMap(ns, "a", map[string]any{"k": "1"}),
				configMap(ns, "b", map[string]any{"k": "2"}),
				configMap(ns, "c", map[string]any{"k": "1"}),
			}
			req.Release = "r2"
			wantActions(t, mustApply(t, e, req), map[string]Action{a: Skipped, b: Configured, cc: Skipped})
			live, _ = getCM(t, c, ns, "b")
			if got, _, _ := unstructured.NestedString(live.Object, "data", "k"); got != "2" {
				t.Errorf("b data.k = %q, want 2", got)
			}
			inv, err := e.Inventory(ctxT(t), ns)
			if err != nil || inv.Release != "r2" || len(inv.Entries) != 3 {
				t.Fatalf("inventory = %+v, %v; want release r2 and 3 entries", inv, err)
			}

			// A resync applies everything again; the server changes nothing.
			req.Resync = true
			wantActions(t, mustApply(t, e, req), map[string]Action{a: Unchanged, b: Unchanged, cc: Unchanged})
		})
	}
}

func TestApplyRefusesBadInputWritingNothing(t *testing.T) {
	f := testfleet.Get(t)
	ns := f.Namespace(t)
	e := newEngine(t, f.Clusters[0])
	cases := map[string]Request{
		"bad service":   {Service: "Not_A_Label", Objects: []*unstructured.Unstructured{configMap(ns, "a", nil)}},
		"no name":       {Service: ns, Objects: []*unstructured.Unstructured{configMap(ns, "ok", nil), configMap(ns, "", nil)}},
		"duplicate":     {Service: ns, Objects: []*unstructured.Unstructured{configMap(ns, "ok", nil), configMap(ns, "ok", nil)}},
		"removed+items": {Service: ns, Removed: true, Objects: []*unstructured.Unstructured{configMap(ns, "ok", nil)}},
	}
	for name, req := range cases {
		_, err := e.Apply(ctxT(t), req)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
	if _, ok := getCM(t, f.Clusters[0], ns, "ok"); ok {
		t.Error("an invalid request created ConfigMap ok")
	}
	// A namespaced object without a namespace fails alone, naming itself.
	cs := mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{configMap("", "nons", nil), configMap(ns, "fine", nil)}})
	err := cs.Err()
	if err == nil || !strings.HasPrefix(err.Error(), "ConfigMap/nons apply failed: ") {
		t.Errorf("ChangeSet.Err() = %v, want it to start with the object", err)
	}
	if cs.Count(Created) != 1 || cs.Count(Failed) != 1 {
		t.Errorf("changes = %+v, want one created and one failed", cs.Changes)
	}
}

func TestPruneDeletesOnlyWhatFlotillaCreated(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{
		configMap(ns, "keep", map[string]any{"k": "v"}),
		configMap(ns, "drop", map[string]any{"k": "v"}),
		configMap(ns, "recreated", map[string]any{"k": "v"}),
	}})
	ctx := ctxT(t)
	stamp := map[string]any{
		"labels":      map[string]any{LabelManagedBy: ManagedByValue},
		"annotations": map[string]any{AnnotationService: ns},
	}
	byHand := func(name string) *unstructured.Unstructured {
		u := configMap(ns, name, map[string]any{"k": "hand"})
		for k, v := range stamp {
			u.Object["metadata"].(map[string]any)[k] = v
		}
		return u
	}
	// Made by hand with Flotilla's label and annotation, never in the inventory.
	if _, err := c.Dynamic.Resource(configMaps).Namespace(ns).Create(ctx, byHand("lookalike"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deleted and made again by hand, same labels: not the object Flotilla applied.
	if err := c.Dynamic.Resource(configMaps).Namespace(ns).Delete(ctx, "recreated", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dynamic.Resource(configMaps).Namespace(ns).Create(ctx, byHand("recreated"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cs := mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{configMap(ns, "keep", map[string]any{"k": "v"})}})
	wantActions(t, cs, map[string]Action{
		"ConfigMap/" + ns + "/keep":      Skipped,
		"ConfigMap/" + ns + "/drop":      Deleted,
		"ConfigMap/" + ns + "/recreated": Skipped,
	})
	for _, ch := range cs.Changes {
		if ch.Object.Name == "recreated" && !strings.Contains(ch.Reason, "UID") {
			t.Errorf("recreated left alone for %q, want the UID reason", ch.Reason)
		}
	}
	for name, want := range map[string]bool{"keep": true, "drop": false, "recreated": true, "lookalike": true} {
		if _, ok := getCM(t, c, ns, name); ok != want {
			t.Errorf("ConfigMap %s exists = %v, want %v", name, ok, want)
		}
	}
	if diff := cmp.Diff([]string{"ConfigMap/" + ns + "/keep"}, inventoryKeys(t, e, ns)); diff != "" {
		t.Errorf("inventory (-want +got):\n%s", diff)
	}
}

func TestEmptyDesiredNeverPrunes(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{configMap(ns, "a", nil)}})

	for _, objs := range [][]*unstructured.Unstructured{nil, {}} {
		cs, err := e.Apply(ctxT(t), Request{Service: ns, Objects: objs})
		if !errors.Is(err, ErrEmptyDesired) || cs != nil {
			t.Fatalf("Apply(empty) = %v, %v; want nil, ErrEmptyDesired", cs, err)
		}
	}
	if _, ok := getCM(t, c, ns, "a"); !ok {
		t.Fatal("an empty desired set pruned ConfigMap a")
	}
	if got := inventoryKeys(t, e, ns); len(got) != 1 {
		t.Fatalf("inventory = %v, want it untouched", got)
	}

	cs := mustApply(t, e, Request{Service: ns, Removed: true})
	wantActions(t, cs, map[string]Action{"ConfigMap/" + ns + "/a": Deleted})
	if _, ok := getCM(t, c, ns, "a"); ok {
		t.Error("ConfigMap a survived the removal of its service")
	}
	if _, ok := getCM(t, c, "flotilla-system", inventoryName(ns)); ok {
		t.Error("the inventory of a removed service was kept")
	}
}

func TestCRDNamespaceAndCustomResourceInOneApply(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t) // only for a unique name; the test makes its own namespace
	group := ns + ".test.flotilla.dev"
	newNS := ns + "-app"
	crd := obj(map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object", "x-kubernetes-preserve-unknown-fields": true,
				}},
			}},
		},
	})
	widget := obj(map[string]any{
		"apiVersion": group + "/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "w1", "namespace": newNS},
		"spec":     map[string]any{"size": int64(3)},
	})
	namespace := obj(map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": newNS}})
	cm := configMap(newNS, "settings", map[string]any{"a": "b"})
	req := Request{Service: ns, Objects: []*unstructured.Unstructured{widget, cm, namespace, crd}}
	e := newEngine(t, c)
	cs := mustApply(t, e, req)
	if err := cs.Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var order []string
	for _, ch := range cs.Changes {
		order = append(order, ch.Object.Kind)
		if ch.Action != Created {
			t.Errorf("%s: %s, want created", ch.Object, ch.Action)
		}
	}
	if diff := cmp.Diff([]string{"CustomResourceDefinition", "Namespace", "ConfigMap", "Widget"}, order); diff != "" {
		t.Errorf("apply order (-want +got):\n%s", diff)
	}
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"}
	if _, err := c.Dynamic.Resource(gvr).Namespace(newNS).Get(ctxT(t), "w1", metav1.GetOptions{}); err != nil {
		t.Fatalf("widget: %v", err)
	}

	// Removing the service prunes in reverse order: objects, namespace, CRD.
	cs = mustApply(t, e, Request{Service: ns, Removed: true})
	order = nil
	for _, ch := range cs.Changes {
		order = append(order, ch.Object.Kind)
		if ch.Action != Deleted {
			t.Errorf("%s: %s (%s), want deleted", ch.Object, ch.Action, ch.Reason)
		}
	}
	if diff := cmp.Diff([]string{"Widget", "ConfigMap", "Namespace", "CustomResourceDefinition"}, order); diff != "" {
		t.Errorf("prune order (-want +got):\n%s", diff)
	}
}

func TestDriftReportedAndSelfHealed(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	// data, not stringData: stringData is write-only and never compares.
	secret := obj(map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "creds", "namespace": ns},
		"data":     map[string]any{"password": "YXBwbGllZC1zZWNyZXQ="},
	})
	objs := []*unstructured.Unstructured{configMap(ns, "settings", map[string]any{"mode": "fast", "level": "3"}), secret}
	for i := 0; i < 10; i++ { // enough ConfigMaps that they are read with a LIST
		objs = append(objs, configMap(ns, "cm-"+string(rune('a'+i)), map[string]any{"i": "x"}))
	}
	req := Request{Service: ns, Objects: objs}
	mustApply(t, e, req)

	rep, err := e.Observe(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Drifted(); len(d) != 0 || rep.Health != health.Healthy {
		t.Fatalf("right after apply: drifted %+v, health %s; want none, Healthy", d, rep.Health)
	}

	ctx := ctxT(t)
	patch := func(kind, name, p string) {
		t.Helper()
		gvr := configMaps
		if kind == "secret" {
			gvr = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
		}
		if _, err := c.Dynamic.Resource(gvr).Namespace(ns).Patch(ctx, name, types.MergePatchType, []byte(p), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
			t.Fatalf("hand edit %s: %v", name, err)
		}
	}
	patch("cm", "settings", `{"data":{"mode":"slow","extra":"not ours"},"metadata":{"labels":{"added":"by-hand"}}}`)
	patch("secret", "creds", `{"data":{"password":"aGFuZC1lZGl0ZWQtc2VjcmV0"}}`)
	patch("cm", "cm-c", `{"metadata":{"labels":{"unrelated":"x"}}}`) // not a field Flotilla applies
	if err := c.Dynamic.Resource(configMaps).Namespace(ns).Delete(ctx, "cm-d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	rep, err = e.Observe(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, o := range rep.Drifted() {
		got[o.Object.Name] = o.Drift
		if o.Corrected {
			t.Errorf("%s corrected without self-heal", o.Object)
		}
	}
	want := map[string][]string{"settings": {"data.mode"}, "creds": {"data.password"}, "cm-d": {MissingField}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("drift (-want +got):\n%s", diff)
	}
	if rep.Health != health.Degraded {
		t.Errorf("health with a missing object = %s, want Degraded", rep.Health)
	}
	js, _ := json.Marshal(rep)
	for _, secretValue := range []string{"applied-secret", "YXBwbGllZC1zZWNyZXQ=", "aGFuZC1lZGl0ZWQtc2VjcmV0", "hand-edited-secret"} {
		if strings.Contains(string(js), secretValue) {
			t.Errorf("report leaks secret value %q: %s", secretValue, js)
		}
	}

	req.SelfHeal = true
	rep, err = e.Observe(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	corrected := map[string]bool{}
	for _, o := range rep.Objects {
		if o.Err != nil {
			t.Errorf("%s: %v", o.Object, o.Err)
		}
		if o.Corrected {
			corrected[o.Object.Name] = true
		}
	}
	if diff := cmp.Diff(map[string]bool{"settings": true, "creds": true, "cm-d": true}, corrected); diff != "" {
		t.Errorf("corrected (-want +got):\n%s", diff)
	}
	live, _ := getCM(t, c, ns, "settings")
	if m, _, _ := unstructured.NestedString(live.Object, "data", "mode"); m != "fast" {
		t.Errorf("settings data.mode = %q after self-heal, want fast", m)
	}
	if x, _, _ := unstructured.NestedString(live.Object, "data", "extra"); x != "not ours" {
		t.Errorf("self-heal removed a field Flotilla does not manage: data.extra = %q", x)
	}
	if _, ok := getCM(t, c, ns, "cm-d"); !ok {
		t.Error("self-heal did not recreate cm-d")
	}

	req.SelfHeal = false
	rep, err = e.Observe(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.Drifted(); len(d) != 0 || rep.Health != health.Healthy {
		t.Errorf("after self-heal: drifted %+v, health %s; want none, Healthy", d, rep.Health)
	}
}

func TestFailedDeletionStaysAndIsRetried(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	stuck := configMap(ns, "stuck", map[string]any{"k": "v"})
	stuck.SetLabels(map[string]string{"flotilla.dev/test-undeletable": "true"})
	keep := configMap(ns, "keep", nil)
	mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{keep, stuck}})

	// An admission policy refuses to delete the object, as a webhook or RBAC might.
	ctx := ctxT(t)
	vap := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapb := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
	policy := obj(map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
		"metadata": map[string]any{"name": ns},
		"spec": map[string]any{
			"failurePolicy": "Fail",
			"matchConstraints": map[string]any{"resourceRules": []any{map[string]any{
				"apiGroups": []any{""}, "apiVersions": []any{"v1"}, "operations": []any{"DELETE"}, "resources": []any{"configmaps"},
			}}},
			"validations": []any{map[string]any{
				"expression": "!has(oldObject.metadata.labels) || !('flotilla.dev/test-undeletable' in oldObject.metadata.labels)",
				"message":    "this test forbids deleting it",
			}},
		},
	})
	binding := obj(map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
		"metadata": map[string]any{"name": ns},
		"spec": map[string]any{
			"policyName": ns, "validationActions": []any{"Deny"},
			"matchResources": map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": ns}}},
		},
	})
	if _, err := c.Dynamic.Resource(vap).Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create policy: %v", err)
	}
	t.Cleanup(func() { _ = c.Dynamic.Resource(vap).Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	if _, err := c.Dynamic.Resource(vapb).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create binding: %v", err)
	}
	t.Cleanup(func() { _ = c.Dynamic.Resource(vapb).Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	// Wait until the policy is in force: a probe with the label cannot be deleted.
	probe := configMap(ns, "probe", nil)
	probe.SetLabels(map[string]string{"flotilla.dev/test-undeletable": "true"})
	if _, err := c.Dynamic.Resource(configMaps).Namespace(ns).Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "policy in force", func() bool {
		err := c.Dynamic.Resource(configMaps).Namespace(ns).Delete(ctx, "probe", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil
	})

	want := map[string]Action{"ConfigMap/" + ns + "/keep": Skipped, "ConfigMap/" + ns + "/stuck": Failed}
	for attempt := 1; attempt <= 2; attempt++ {
		cs := mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{keep}})
		wantActions(t, cs, want)
		if err := cs.Err(); err == nil || !strings.HasPrefix(err.Error(), "ConfigMap/"+ns+"/stuck delete failed: ") {
			t.Errorf("attempt %d: error %v, want it to name the object first", attempt, err)
		}
		if diff := cmp.Diff([]string{"ConfigMap/" + ns + "/keep", "ConfigMap/" + ns + "/stuck"}, inventoryKeys(t, e, ns)); diff != "" {
			t.Errorf("attempt %d: inventory (-want +got):\n%s", attempt, diff)
		}
	}

	if err := c.Dynamic.Resource(vapb).Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "policy lifted", func() bool {
		err := c.Dynamic.Resource(configMaps).Namespace(ns).Delete(ctx, "probe", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil
	})
	want["ConfigMap/"+ns+"/stuck"] = Deleted
	wantActions(t, mustApply(t, e, Request{Service: ns, Objects: []*unstructured.Unstructured{keep}}), want)
	if _, ok := getCM(t, c, ns, "stuck"); ok {
		t.Error("stuck survived the retried deletion")
	}
	if diff := cmp.Diff([]string{"ConfigMap/" + ns + "/keep"}, inventoryKeys(t, e, ns)); diff != "" {
		t.Errorf("inventory after retry (-want +got):\n%s", diff)
	}
}

func TestHealthRollupDeploymentBecomesAvailable(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	labels := map[string]any{"app": "web"}
	dep := obj(map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(2),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "web", "image": "registry.example/web:1",
				}}},
			},
		},
	})
	req := Request{Service: ns, Objects: []*unstructured.Unstructured{dep, configMap(ns, "web-config", map[string]any{"a": "b"})}}
	mustApply(t, e, req)
	rep, err := e.Observe(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	first := rep.Health
	if first != health.Progressing && first != health.Healthy {
		t.Fatalf("just after apply the service is %s, want Progressing (or already Healthy)", first)
	}
	var last *Report
	eventually(t, 2*time.Minute, "deployment available", func() bool {
		last, err = e.Observe(ctxT(t), req)
		return err == nil && last.Health == health.Healthy
	})
	for _, o := range last.Objects {
		if o.Health.Status != health.Healthy {
			t.Errorf("%s: %+v, want Healthy", o.Object, o.Health)
		}
	}
	t.Logf("health went %s -> %s", first, last.Health)
}

func TestInterruptedApplyConvergesAndLeavesNothingUntracked(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	var objs []*unstructured.Unstructured
	for i := 0; i < 400; i++ {
		objs = append(objs, configMap(ns, fmt.Sprintf("cm-%03d", i), map[string]any{"i": fmt.Sprint(i)}))
	}
	// Cancel the apply as soon as some objects exist, as if the agent were killed.
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() {
		defer cancel()
		for ctx.Err() == nil {
			l, err := c.Dynamic.Resource(configMaps).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy})
			if err == nil && len(l.Items) >= 5 {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err := e.Apply(ctx, Request{Service: ns, Objects: objs})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Apply returned %v, want context.Canceled (did it finish before the cancel?)", err)
	}
	l, err := c.Dynamic.Resource(configMaps).Namespace(ns).List(ctxT(t), metav1.ListOptions{LabelSelector: LabelManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	created := len(l.Items)
	if created == 0 || created == len(objs) {
		t.Fatalf("%d of %d objects exist after the interruption, want some", created, len(objs))
	}
	// Every object that exists is tracked, so none can leak.
	tracked := map[string]bool{}
	for _, k := range inventoryKeys(t, e, ns) {
		tracked[k] = true
	}
	for _, u := range l.Items {
		if !tracked["ConfigMap/"+ns+"/"+u.GetName()] {
			t.Errorf("ConfigMap %s exists but is not in the inventory", u.GetName())
		}
	}

	// The next apply wants only the first ten: it converges, pruning what
	// the interrupted run created beyond them.
	cs := mustApply(t, e, Request{Service: ns, Objects: objs[:10]})
	if err := cs.Err(); err != nil {
		t.Fatal(err)
	}
	if got := cs.Count(Deleted); got < created-10 {
		t.Errorf("pruned %d, want at least %d", got, created-10)
	}
	l, err = c.Dynamic.Resource(configMaps).Namespace(ns).List(ctxT(t), metav1.ListOptions{LabelSelector: LabelManagedBy})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 10 {
		t.Errorf("%d ConfigMaps after convergence, want 10", len(l.Items))
	}
	if got := inventoryKeys(t, e, ns); len(got) != 10 {
		t.Errorf("inventory has %d entries after convergence, want 10", len(got))
	}
	t.Logf("interrupted after %d of %d objects", created, len(objs))
}

func TestConflictFailsWithoutForceAndIsRetried(t *testing.T) {
	f := testfleet.Get(t)
	c := f.Clusters[0]
	ns := f.Namespace(t)
	e := newEngine(t, c)
	req := Request{Service: ns, Objects: []*unstructured.Unstructured{configMap(ns, "shared", map[string]any{"owner": "flotilla"})}}
	mustApply(t, e, req)
	// Another tool takes the field over with its own server-side apply.
	other := configMap(ns, "shared", map[string]any{"owner": "someone-else"})
	if _, err := c.Dynamic.Resource(configMaps).Namespace(ns).Apply(ctxT(t), "shared", other, metav1.ApplyOptions{FieldManager: "other-tool", Force: true}); err != nil {
		t.Fatal(err)
	}
	req.Objects = []*unstructured.Unstructured{configMap(ns, "shared", map[string]any{"owner": "flotilla", "new": "key"})}
	cs := mustApply(t, e, req)
	if cs.Count(Failed) != 1 || !strings.Contains(cs.Changes[0].Reason, "conflict") {
		t.Fatalf("without Force: %+v, want a failed change naming the conflict", cs.Changes)
	}
	// The failure cleared the hash: the same desired object is tried again, and Force wins.
	req.Force = true
	wantActions(t, mustApply(t, e, req), map[string]Action{"ConfigMap/" + ns + "/shared": Configured})
	live, _ := getCM(t, c, ns, "shared")
	if v, _, _ := unstructured.NestedString(live.Object, "data", "owner"); v != "flotilla" {
		t.Errorf("data.owner = %q after a forced apply, want flotilla", v)
	}
}
