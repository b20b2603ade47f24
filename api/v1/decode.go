package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// DecodeError says why a document is not a well-formed object: malformed
// syntax, a wrong apiVersion or kind, unknown fields, or values of the wrong
// type. Fields lists the field-level problems when there are any.
type DecodeError struct {
	Message string
	Fields  []FieldError
}

// Error renders the message followed by every field problem.
func (e *DecodeError) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	if e.Message == "" {
		return strings.Join(parts, "; ")
	}
	return e.Message + ": " + strings.Join(parts, "; ")
}

// DocumentError places an error in a multi-document YAML source.
type DocumentError struct {
	Source   string
	Document int // 1-based, counting non-empty documents
	Line     int // 1-based line in the source
	Err      error
}

// Error renders "source: document N (line L): problem".
func (e *DocumentError) Error() string {
	return fmt.Sprintf("%s: document %d (line %d): %v", e.Source, e.Document, e.Line, e.Err)
}

// Unwrap returns the underlying error.
func (e *DocumentError) Unwrap() error { return e.Err }

// DecodeJSON decodes one object strictly: the apiVersion must be ours, the
// kind known, every field known (names match exactly) and of the right type.
func DecodeJSON(data []byte) (Object, error) {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, &DecodeError{Message: "malformed JSON: " + describeJSONError(data, err)}
	}
	if _, err := dec.Token(); err == nil {
		return nil, &DecodeError{Message: "malformed JSON: unexpected data after the object"}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, &DecodeError{Message: fmt.Sprintf("must be an object (a mapping), got %s", jsonKind(raw))}
	}
	apiVersion, _ := m["apiVersion"].(string)
	kind, _ := m["kind"].(string)
	var fields []FieldError
	switch {
	case m["apiVersion"] == nil:
		fields = append(fields, FieldError{"apiVersion", fmt.Sprintf("required: %q", APIVersion)})
	case apiVersion != APIVersion:
		fields = append(fields, FieldError{"apiVersion", fmt.Sprintf("unsupported %v: must be %q", m["apiVersion"], APIVersion)})
	}
	info, known := LookupKind(kind)
	switch {
	case m["kind"] == nil:
		fields = append(fields, FieldError{"kind", "required"})
	case !known || info.Kind != kind:
		fields = append(fields, FieldError{"kind", fmt.Sprintf("unknown kind %v: must be one of %s", m["kind"], kindNames())})
	}
	if len(fields) > 0 {
		return nil, &DecodeError{Fields: fields}
	}
	obj := info.New()
	checkFields(reflect.TypeOf(obj), raw, "", &fields)
	if len(fields) > 0 {
		return nil, &DecodeError{Fields: fields}
	}
	if err := json.Unmarshal(data, obj); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &DecodeError{Fields: []FieldError{{te.Field, fmt.Sprintf("cannot hold %s", te.Value)}}}
		}
		return nil, &DecodeError{Message: err.Error()}
	}
	return obj, nil
}

func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Kind
	}
	return strings.Join(names, ", ")
}

func describeJSONError(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := 1, 1
		for _, c := range data[:min(max(int(se.Offset)-1, 0), len(data))] { // Offset counts the bad byte
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return fmt.Sprintf("line %d, column %d: %s", line, col, strings.TrimPrefix(se.Error(), "json: "))
	}
	if errors.Is(err, io.EOF) {
		return "empty document"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	intOrPctType    = reflect.TypeFor[IntOrPercent]()
)

// checkFields walks a generic JSON value against the Go type it will be
// decoded into and reports, with full paths, every unknown field (matched
// case-sensitively, unlike encoding/json) and every value of the wrong type.
func checkFields(t reflect.Type, v any, path string, out *[]FieldError) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return // null leaves the zero value
	}
	at := func() string {
		if path == "" {
			return "(document)"
		}
		return path
	}
	wrong := func(want string) {
		*out = append(*out, FieldError{at(), fmt.Sprintf("must be %s, got %s", want, jsonKind(v))})
	}
	switch {
	case t == rawMessageType:
		return
	case t == intOrPctType:
		switch v.(type) {
		case string, json.Number:
		default:
			wrong("a number or a percentage string")
		}
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return // time.Time and friends check themselves
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			wrong("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			wrong("a boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			wrong("a whole number")
		} else if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			*out = append(*out, FieldError{at(), fmt.Sprintf("must be a whole number within %d bits, got %s", t.Bits(), n)})
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			wrong("a number")
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			wrong("a list")
			return
		}
		for i, e := range list {
			checkFields(t.Elem(), e, index(path, i), out)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			wrong("a mapping")
			return
		}
		for _, k := range sortedKeys(m) {
			checkFields(t.Elem(), m[k], path+"["+k+"]", out)
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			wrong("a mapping")
			return
		}
		fields := jsonFields(t)
		for _, k := range sortedKeys(m) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				*out = append(*out, FieldError{p, "unknown field"})
				continue
			}
			checkFields(ft, m[k], p, out)
		}
	case reflect.Interface:
		return
	}
}

// jsonFields maps the JSON names of t's fields (embedded structs flattened)
// to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// yamlDocument is one non-empty document of a YAML stream.
type yamlDocument struct {
	index     int // 1-based among non-empty documents
	startLine int // line of the document's first line in the source
	firstLine int // line of its first line with content
	text      []byte
}

var docSeparator = regexp.MustCompile(`^---(\s.*)?$`)

// splitYAML cuts a stream at "---" lines (and "..." end markers) and drops
// documents holding only blanks and comments.
func splitYAML(data []byte) []yamlDocument {
	var docs []yamlDocument
	lines := strings.SplitAfter(string(data), "\n")
	start := 0
	flush := func(end int) {
		first := 0
		for i := start; i < end; i++ {
			t := strings.TrimSpace(lines[i])
			if t != "" && !strings.HasPrefix(t, "#") {
				first = i + 1
				break
			}
		}
		if first != 0 {
			docs = append(docs, yamlDocument{
				index: len(docs) + 1, startLine: start + 1, firstLine: first,
				text: []byte(strings.Join(lines[start:end], "")),
			})
		}
	}
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if docSeparator.MatchString(t) || t == "..." {
			flush(i)
			start = i + 1
			if rest := strings.TrimSpace(strings.TrimPrefix(t, "---")); rest != "" && !strings.HasPrefix(rest, "#") && t != "..." {
				// "--- {inline: document}": keep the rest of the line.
				lines[i] = strings.Repeat(" ", 3) + l[3:]
				start = i
			}
		}
	}
	flush(len(lines))
	return docs
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// DecodeYAML decodes a multi-document YAML stream strictly (as DecodeJSON,
// plus duplicate keys are errors). Empty documents are skipped. Every
// failing document is reported, each as a *DocumentError naming the source,
// the document and the line; they are joined with errors.Join.
func DecodeYAML(source string, data []byte) ([]Object, error) {
	objs, _, err := decodeYAML(source, data)
	return objs, err
}

func decodeYAML(source string, data []byte) ([]Object, []yamlDocument, error) {
	docs := splitYAML(data)
	var (
		objs []Object
		errs []error
	)
	for _, d := range docs {
		js, err := yaml.YAMLToJSONStrict(d.text)
		if err != nil {
			line := d.firstLine
			msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			msg = strings.TrimPrefix(msg, "yaml: ")
			if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
				n, _ := strconv.Atoi(m[1])
				line = d.startLine + n - 1
				msg = strings.Replace(msg, m[0], "", 1)
			}
			msg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(msg, "unmarshal errors:")), "\n")
			errs = append(errs, &DocumentError{source, d.index, line, &DecodeError{Message: "malformed YAML: " + msg}})
			continue
		}
		obj, err := DecodeJSON(js)
		if err != nil {
			errs = append(errs, &DocumentError{source, d.index, d.firstLine, err})
			continue
		}
		objs = append(objs, obj)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return objs, docs, nil
}

// LoadYAML decodes a multi-document YAML stream, fills defaults and
// validates every object; problems of every document are reported at once,
// each placed as by DecodeYAML. It is what `flotilla apply` wants before
// sending anything.
func LoadYAML(source string, data []byte) ([]Object, error) {
	objs, docs, err := decodeYAML(source, data)
	if err != nil {
		return nil, err
	}
	var errs []error
	for i, o := range objs {
		o.Default()
		if err := o.Validate(); err != nil {
			errs = append(errs, &DocumentError{source, docs[i].index, docs[i].firstLine, err})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}
