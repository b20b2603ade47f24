package server

import (
	"errors"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/analysis"
)

// checkKind runs the checks of a kind that api/v1 cannot do itself because they need the engine
// that will run the object: an AnalysisTemplate's CEL conditions, provider templates and JSON paths
// must compile (analysis.Check). It is part of prepare, so create, update and apply refuse such an
// object with 422 and the field path, and apply writes nothing. internal/server imports
// internal/analysis directly rather than taking a hook in Options: the check is a rule of the API,
// not something a caller may leave out, and analysis imports neither server nor anything above it.
func checkKind(obj v1.Object) error {
	t, ok := obj.(*v1.AnalysisTemplate)
	if !ok {
		return nil
	}
	err := analysis.Check(t.Spec)
	if ve := (*v1.ValidationError)(nil); errors.As(err, &ve) {
		ve.Name = t.Metadata.Name
	}
	return err
}
