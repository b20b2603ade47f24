package bundle

import (
	"encoding/json"
	"strconv"
)

// serverMetadata lists metadata fields that the API server sets; they never
// belong in desired state.
var serverMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp",
	"deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
}

// serverAnnotations lists annotations written by clients or servers that
// describe a past apply rather than desired state.
var serverAnnotations = []string{
	"kubectl.kubernetes.io/last-applied-configuration",
	"deployment.kubernetes.io/revision",
}

// normaliseObject strips fields that do not belong to desired state from a
// copied object, in place.
func normaliseObject(obj map[string]any) {
	delete(obj, "status")
	meta, ok := obj["metadata"].(map[string]any)
	if !ok {
		return
	}
	for _, k := range serverMetadata {
		delete(meta, k)
	}
	if ann, ok := meta["annotations"].(map[string]any); ok {
		for _, k := range serverAnnotations {
			delete(ann, k)
		}
	}
	for _, k := range []string{"labels", "annotations", "namespace"} {
		switch v := meta[k].(type) {
		case nil:
			delete(meta, k)
		case map[string]any:
			if len(v) == 0 {
				delete(meta, k)
			}
		case string:
			if v == "" {
				delete(meta, k)
			}
		}
	}
}

// normaliseValue deep-copies a decoded value into the types the bundle
// holds: map[string]any, []any, string, bool, nil, json.Number for every
// number. It drops "creationTimestamp: null" from nested object metadata (pod
// templates written by kubectl carry it), which has no effect on the object.
func normaliseValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normaliseValue(e)
		}
		if md, ok := m["metadata"].(map[string]any); ok {
			if ts, present := md["creationTimestamp"]; present && ts == nil {
				delete(md, "creationTimestamp")
			}
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normaliseValue(e)
		}
		return s
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case float64:
		b, err := json.Marshal(x)
		if err != nil {
			return x // encodeLine reports the unsupported value
		}
		return json.Number(b)
	default:
		return x
	}
}
