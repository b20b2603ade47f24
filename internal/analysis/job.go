package analysis

import (
	"errors"

	v1 "flotilla.dev/flotilla/api/v1"
)

func (a *Analyzer) job(req Request, m v1.Metric, data TemplateData) (measurer, error) {
	return nil, errors.New("job provider: not available yet")
}
