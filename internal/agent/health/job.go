package health

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// jobOutcome makes a Job Healthy only once it completed. kstatus calls a
// started Job Current ("Job in progress. ..."), which would read as
// Healthy while it still runs, so a service whose migration Job is running
// would look done and an analysis Job would look passed. Complete=True
// keeps kstatus' Healthy ("Job Completed. ..."); Failed=True is already
// Failed; FailureTarget=True (Kubernetes decided the Job fails and is
// stopping its pods, Failed follows) is Failed now; anything else that
// kstatus called Current is Progressing. Terminating and not-started Jobs
// are already Progressing and pass unchanged.
func jobOutcome(u *unstructured.Unstructured, r Result) Result {
	if r.Status != Healthy {
		return r
	}
	switch {
	case conditionTrue(u.Object, "Complete"):
		return r
	case conditionTrue(u.Object, "FailureTarget"):
		return Result{Status: Failed, Message: "Job failing: " + conditionMessage(u.Object, "FailureTarget")}
	}
	return Result{Status: Progressing, Message: r.Message}
}

// conditionTrue reports whether status.conditions has type typ with status "True".
func conditionTrue(obj map[string]any, typ string) bool {
	c := condition(obj, typ)
	return c != nil && c["status"] == "True"
}

// conditionMessage is the reason and message of condition typ, for people.
func conditionMessage(obj map[string]any, typ string) string {
	c := condition(obj, typ)
	reason, _ := c["reason"].(string)
	msg, _ := c["message"].(string)
	switch {
	case reason != "" && msg != "":
		return reason + ": " + msg
	case reason != "":
		return reason
	}
	return msg
}

func condition(obj map[string]any, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}
