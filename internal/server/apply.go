package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/auth"
	"flotilla.dev/flotilla/internal/store"
)

// apply creates or updates a batch of objects. Every object is decoded, authorised and validated
// first and every problem is reported together; only a batch without problems reaches the store,
// in one transaction, so either all objects are written or none.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	objs, err := s.decodeBatch(w, r)
	if err != nil {
		return err
	}
	if len(objs) == 0 {
		return badRequest("apply: the request holds no objects")
	}
	resources := make([]string, 0, len(objs))
	for _, o := range objs {
		info, _ := v1.LookupKind(o.GetTypeMeta().Kind)
		resources = append(resources, info.Plural)
	}
	if err := s.authorizeEach(p, auth.VerbApply, resources); err != nil {
		return err
	}

	var problems []v1.FieldError
	objectsWithProblems := 0
	first := map[string]int{}
	batch := make([]*store.Object, 0, len(objs))
	for i, o := range objs {
		tm, meta := o.GetTypeMeta(), o.GetMetadata()
		prefix := fmt.Sprintf("items[%d]", i)
		id := tm.Kind + " " + meta.Name
		before := len(problems)
		if j, dup := first[tm.Kind+"/"+meta.Name]; dup && meta.Name != "" {
			problems = append(problems, v1.FieldError{Path: prefix + ".metadata.name",
				Message: fmt.Sprintf("%s: duplicate of items[%d]; an object may appear once per apply", id, j)})
		} else {
			first[tm.Kind+"/"+meta.Name] = i
		}
		so, err := prepare(o)
		if err != nil {
			st := statusOf(err)
			if st.Code != http.StatusUnprocessableEntity {
				return err
			}
			if len(st.Fields) == 0 {
				problems = append(problems, v1.FieldError{Path: prefix, Message: st.Message})
			}
			for _, f := range st.Fields {
				problems = append(problems, v1.FieldError{Path: prefix + "." + f.Path, Message: id + ": " + f.Message})
			}
		}
		if len(problems) > before {
			objectsWithProblems++
			continue
		}
		// apply is create-or-update of the declared state: no version check, status left alone.
		so.ResourceVersion, so.Status = 0, nil
		batch = append(batch, so)
	}
	if len(problems) > 0 {
		return invalid(fmt.Sprintf("apply: %d problem(s) in %d of %d object(s); nothing was written", len(problems), objectsWithProblems, len(objs)), problems...)
	}
	results, err := s.store.Apply(r.Context(), batch, p.Actor())
	if err != nil {
		return fmt.Errorf("apply: nothing was written: %w", err)
	}
	out := v1.ApplyResponse{Items: make([]v1.ApplyResult, 0, len(results))}
	for _, res := range results {
		out.Items = append(out.Items, v1.ApplyResult{Kind: res.Object.Kind, Name: res.Object.Name, Action: res.Action,
			ResourceVersion: strconv.FormatInt(res.Object.ResourceVersion, 10)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// decodeBatch reads the objects of an apply: a JSON ApplyRequest or multi-document YAML. Every item
// of a JSON batch is decoded and every failure reported, each with its index.
func (s *Server) decodeBatch(w http.ResponseWriter, r *http.Request) ([]v1.Object, error) {
	mt := mediaType(r)
	if mt != mediaJSON && mt != mediaYAML {
		return nil, unsupportedMediaType(mt, "application/json or application/yaml")
	}
	data, err := s.readBody(w, r)
	if err != nil {
		return nil, err
	}
	if mt == mediaYAML {
		objs, err := v1.DecodeYAML("request body", data)
		if err != nil {
			return nil, badRequest("%v; nothing was written", err)
		}
		return objs, nil
	}
	var req v1.ApplyRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, badRequest("request body: %s; nothing was written", jsonErrorWhere(data, err))
	}
	var objs []v1.Object
	var msgs []v1.FieldError
	for i, raw := range req.Items {
		obj, err := v1.DecodeJSON(raw)
		if err != nil {
			msgs = append(msgs, v1.FieldError{Path: fmt.Sprintf("items[%d]", i), Message: err.Error()})
			continue
		}
		objs = append(objs, obj)
	}
	if len(msgs) > 0 {
		e := badRequest("apply: %d of %d object(s) could not be read; nothing was written", len(msgs), len(req.Items)).(*apiError)
		e.fields = msgs
		return nil, e
	}
	return objs, nil
}
