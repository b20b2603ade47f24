package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
	"flotilla.dev/flotilla/internal/version"
)

// The OpenAPI 3 document is generated from the route table and the Go types of the kinds, so it
// cannot drift from what the server serves.

type schema = map[string]any

// schemaGen turns Go types into OpenAPI schemas, collecting named ones under components.
type schemaGen struct {
	defs map[string]schema
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawJSONType = reflect.TypeFor[json.RawMessage]()
	marshaler   = reflect.TypeFor[json.Marshaler]()
)

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }

// named registers t under name and returns a reference to it.
func (g *schemaGen) named(name string, t reflect.Type) schema {
	if _, ok := g.defs[name]; ok {
		return ref(name)
	}
	s := g.of(t)
	if r, _ := s["$ref"].(string); r == ref(name)["$ref"] {
		return s // an API struct of that name, registered by of
	}
	g.defs[name] = s
	return ref(name)
}

// of returns the schema of t; struct types from the API package become named components.
func (g *schemaGen) of(t reflect.Type) schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return schema{"type": "string", "format": "date-time"}
	case t == rawJSONType:
		return schema{}
	case t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler):
		if t.Kind() == reflect.String {
			// IntOrPercent and friends: a number or a string on the wire.
			return schema{"oneOf": []schema{{"type": "integer"}, {"type": "string"}}}
		}
		return schema{}
	}
	switch t.Kind() {
	case reflect.String:
		return schema{"type": "string"}
	case reflect.Bool:
		return schema{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return schema{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return schema{"type": "number"}
	case reflect.Slice, reflect.Array:
		return schema{"type": "array", "items": g.of(t.Elem())}
	case reflect.Map:
		return schema{"type": "object", "additionalProperties": g.of(t.Elem())}
	case reflect.Interface:
		return schema{}
	case reflect.Struct:
		if t.PkgPath() == reflect.TypeFor[v1.TypeMeta]().PkgPath() && t.Name() != "" {
			if _, ok := g.defs[t.Name()]; ok {
				return ref(t.Name())
			}
			g.defs[t.Name()] = schema{}
			g.defs[t.Name()] = g.structSchema(t)
			return ref(t.Name())
		}
		return g.structSchema(t)
	}
	return schema{}
}

func (g *schemaGen) structSchema(t reflect.Type) schema {
	props := schema{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if name == "" {
				name = f.Name
			}
			props[name] = g.of(f.Type)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && f.Type.Kind() != reflect.Pointer {
				required = append(required, name)
			}
		}
	}
	walk(t)
	s := schema{"type": "object", "properties": props}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	return s
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// buildOpenAPI renders the OpenAPI 3 document of the route table.
func (s *Server) buildOpenAPI() ([]byte, error) {
	g := &schemaGen{defs: map[string]schema{}}
	g.named("Status", reflect.TypeFor[v1.Status]())
	for _, k := range v1.Kinds() {
		g.named(k.Kind, reflect.TypeOf(k.New()))
		g.defs[k.Kind+"List"] = schema{"type": "object", "required": []string{"apiVersion", "kind", "metadata", "items"},
			"properties": schema{
				"apiVersion": schema{"type": "string"}, "kind": schema{"type": "string"},
				"metadata": g.of(reflect.TypeFor[v1.ListMeta]()),
				"items":    schema{"type": "array", "items": ref(k.Kind)},
			}}
	}
	for name, t := range map[string]reflect.Type{
		"ApplyRequest": reflect.TypeFor[v1.ApplyRequest](), "ApplyResponse": reflect.TypeFor[v1.ApplyResponse](),
		"Event": reflect.TypeFor[v1.Event](), "EventList": reflect.TypeFor[v1.EventList](),
		"TokenRequest": reflect.TypeFor[v1.TokenRequest](), "Token": reflect.TypeFor[v1.Token](),
		"TokenList": reflect.TypeFor[v1.TokenList](), "WhoAmI": reflect.TypeFor[v1.WhoAmI](),
		"OIDCInfo": reflect.TypeFor[v1.OIDCInfo](), "OIDCTokenRequest": reflect.TypeFor[v1.OIDCTokenRequest](),
		"Health": reflect.TypeFor[Health](),
	} {
		g.named(name, t)
	}
	for name, v := range kpiSchemas() {
		g.named(name, reflect.TypeOf(v))
	}
	for name, v := range rolloutSchemas() {
		g.named(name, reflect.TypeOf(v))
	}
	for name, v := range releaseSchemas() {
		g.named(name, reflect.TypeOf(v))
	}
	for name, v := range agentSchemas() {
		g.named(name, reflect.TypeOf(v))
	}
	g.defs["MergePatch"] = schema{"type": "object", "description": "JSON merge patch (RFC 7386) of the object"}

	paths := map[string]schema{}
	for _, rt := range s.routes {
		item, ok := paths[rt.Path]
		if !ok {
			item = schema{}
			paths[rt.Path] = item
		}
		item[strings.ToLower(rt.Method)] = s.operation(rt)
	}
	doc := schema{
		"openapi": "3.0.3",
		"info": schema{"title": "Flotilla API", "version": version.Version,
			"description": "Flotilla's control plane: declarative objects, batch apply, audit trail and watch streams. " +
				"Every error answer is a Status. Authenticate with an API token as a bearer credential."},
		"paths": paths,
		"components": schema{
			"schemas":         g.defs,
			"securitySchemes": schema{"bearer": schema{"type": "http", "scheme": "bearer"}},
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// operation documents one route.
func (s *Server) operation(rt Route) schema {
	op := schema{"operationId": rt.OperationID, "summary": rt.Summary,
		"description": "Access: " + rt.Rule.String() + "."}
	if rt.Kind != "" {
		op["tags"] = []string{rt.Kind}
	}
	var params []schema
	for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
		params = append(params, schema{"name": m[1], "in": "path", "required": true, "schema": schema{"type": "string"}})
	}
	for _, p := range rt.Query {
		params = append(params, schema{"name": p.Name, "in": "query", "description": p.Description, "schema": schema{"type": p.Type}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	if rt.Request != "" {
		content := schema{"application/json": schema{"schema": ref(rt.Request)}}
		switch {
		case rt.Request == "MergePatch":
			content = schema{mediaMergePatch: schema{"schema": ref(rt.Request)}}
		case rt.Kind != "" || rt.Request == "ApplyRequest":
			content[mediaYAML] = schema{"schema": schema{"type": "string", "description": "YAML document(s)"}}
		}
		op["requestBody"] = schema{"required": true, "content": content}
	}
	code := rt.Code
	if code == 0 {
		code = http.StatusOK
	}
	ok := schema{"description": http.StatusText(code)}
	switch {
	case rt.Stream:
		ok["content"] = schema{"text/event-stream": schema{"schema": schema{"type": "string",
			"description": "Server-Sent Events; each data line is an Event, the id its seq"}}}
	case rt.Response != "":
		ok["content"] = schema{"application/json": schema{"schema": ref(rt.Response)}}
	case rt.Path == "/metrics":
		ok["content"] = schema{"text/plain": schema{"schema": schema{"type": "string"}}}
	case rt.Path == "/api/v1/openapi.json":
		ok["content"] = schema{"application/json": schema{"schema": schema{"type": "object"}}}
	}
	responses := schema{strconv.Itoa(code): ok}
	errResp := func(desc string) schema {
		return schema{"description": desc, "content": schema{"application/json": schema{"schema": ref("Status")}}}
	}
	if rt.Rule.NeedsPrincipal() {
		op["security"] = []schema{{"bearer": []string{}}}
		responses["401"] = errResp("missing, unknown or expired token")
		responses["403"] = errResp("the caller's roles lack the permission")
	}
	if rt.Request != "" {
		responses["400"] = errResp("the body cannot be read; the message says where")
		responses["413"] = errResp("the body is over the size limit")
		responses["422"] = errResp("validation failed; fields lists every problem with its path")
	}
	if strings.Contains(rt.Path, "{") {
		responses["404"] = errResp("no such object")
	}
	if rt.Method == http.MethodPut || rt.Method == http.MethodPatch || rt.Method == http.MethodDelete || rt.Request == "ApplyRequest" {
		responses["409"] = errResp("stale resourceVersion")
	} else if rt.Method == http.MethodPost && rt.Kind != "" {
		responses["409"] = errResp("an object with this name exists")
	}
	responses["default"] = errResp("error")
	op["responses"] = responses
	return op
}
