package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	v1 "flotilla.dev/flotilla/api/v1"
)

// ListOptions narrow and page a List call.
type ListOptions struct {
	// LabelSelector is a Kubernetes label selector such as "env=prod,region in (eu,us)".
	LabelSelector string
	// Limit is the most items to return; 0 lets the server choose.
	Limit int
	// Continue is the token from a previous page's ObjectList.Continue.
	Continue string
}

// ObjectList is one page of objects of one kind.
type ObjectList struct {
	Items []v1.Object
	// Continue, when not empty, fetches the next page through ListOptions.Continue.
	Continue string
	// ResourceVersion is the store version the list was read at.
	ResourceVersion string
}

// DeleteOptions make a Delete conditional.
type DeleteOptions struct {
	// ResourceVersion, when set, deletes only if the object still has this version (else a
	// conflict).
	ResourceVersion string
}

// lookup resolves a kind, plural or short name to the kind's registry entry.
func lookup(kind string) (v1.KindInfo, error) {
	info, ok := v1.LookupKind(kind)
	if !ok {
		return v1.KindInfo{}, fmt.Errorf("unknown kind %q", kind)
	}
	return info, nil
}

func objectPath(info v1.KindInfo, name string) string {
	return "/api/v1/" + info.Plural + "/" + url.PathEscape(name)
}

// decodeObject reads an object of kind info from the server's JSON. It is lenient about fields it
// does not know, so an older client keeps working against a newer server.
func decodeObject(info v1.KindInfo, data []byte) (v1.Object, error) {
	obj := info.New()
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", info.Kind, err)
	}
	return obj, nil
}

// getObject performs r and decodes the answer as one object of kind info.
func (c *Client) objectCall(ctx context.Context, info v1.KindInfo, r request) (v1.Object, error) {
	var raw json.RawMessage
	if err := c.do(ctx, r, &raw); err != nil {
		return nil, err
	}
	return decodeObject(info, raw)
}

func kindOf(obj v1.Object) (v1.KindInfo, string, error) {
	tm := obj.GetTypeMeta()
	info, err := lookup(tm.Kind)
	if err != nil {
		return v1.KindInfo{}, "", err
	}
	name := obj.GetMetadata().Name
	if name == "" {
		return v1.KindInfo{}, "", fmt.Errorf("%s: metadata.name is empty", info.Kind)
	}
	return info, name, nil
}

func encode(obj any) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return data, nil
}

// Create stores a new object and returns it as stored (with uid, resourceVersion, timestamps).
func (c *Client) Create(ctx context.Context, obj v1.Object) (v1.Object, error) {
	info, err := lookup(obj.GetTypeMeta().Kind)
	if err != nil {
		return nil, err
	}
	body, err := encode(obj)
	if err != nil {
		return nil, err
	}
	return c.objectCall(ctx, info, request{method: http.MethodPost, path: "/api/v1/" + info.Plural, body: body})
}

// Get returns the object kind/name. kind may be a kind, plural or short name.
func (c *Client) Get(ctx context.Context, kind, name string) (v1.Object, error) {
	info, err := lookup(kind)
	if err != nil {
		return nil, err
	}
	return c.objectCall(ctx, info, request{method: http.MethodGet, path: objectPath(info, name)})
}

// List returns one page of objects of kind.
func (c *Client) List(ctx context.Context, kind string, opts ListOptions) (*ObjectList, error) {
	info, err := lookup(kind)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Continue != "" {
		q.Set("continue", opts.Continue)
	}
	var l v1.List
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/" + info.Plural, query: q}, &l); err != nil {
		return nil, err
	}
	out := &ObjectList{Continue: l.Metadata.Continue, ResourceVersion: l.Metadata.ResourceVersion}
	for _, raw := range l.Items {
		obj, err := decodeObject(info, raw)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, obj)
	}
	return out, nil
}

// ListAll follows continue tokens and returns every object of kind that matches opts.
func (c *Client) ListAll(ctx context.Context, kind string, opts ListOptions) ([]v1.Object, error) {
	var all []v1.Object
	for {
		l, err := c.List(ctx, kind, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, l.Items...)
		if l.Continue == "" {
			return all, nil
		}
		opts.Continue = l.Continue
	}
}

// Update replaces the object's labels, annotations and spec. obj must carry the resourceVersion it
// was read at; if the object changed since, the answer is a conflict (IsConflict).
func (c *Client) Update(ctx context.Context, obj v1.Object) (v1.Object, error) {
	info, name, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	body, err := encode(obj)
	if err != nil {
		return nil, err
	}
	return c.objectCall(ctx, info, request{method: http.MethodPut, path: objectPath(info, name), body: body})
}

// UpdateStatus replaces the object's status only, with the same resourceVersion check as Update.
func (c *Client) UpdateStatus(ctx context.Context, obj v1.Object) (v1.Object, error) {
	info, name, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	body, err := encode(obj)
	if err != nil {
		return nil, err
	}
	return c.objectCall(ctx, info, request{method: http.MethodPut, path: objectPath(info, name) + "/status", body: body})
}

// Patch applies a JSON merge patch (RFC 7386) to the object kind/name. A patch that sets
// metadata.resourceVersion is applied only to that version.
func (c *Client) Patch(ctx context.Context, kind, name string, mergePatch []byte) (v1.Object, error) {
	info, err := lookup(kind)
	if err != nil {
		return nil, err
	}
	return c.objectCall(ctx, info, request{method: http.MethodPatch, path: objectPath(info, name),
		body: mergePatch, contentType: "application/merge-patch+json"})
}

// Delete removes the object kind/name and returns its last state.
func (c *Client) Delete(ctx context.Context, kind, name string, opts DeleteOptions) (v1.Object, error) {
	info, err := lookup(kind)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.ResourceVersion != "" {
		q.Set("resourceVersion", opts.ResourceVersion)
	}
	return c.objectCall(ctx, info, request{method: http.MethodDelete, path: objectPath(info, name), query: q})
}

// Apply creates or updates objs in one transaction: either every object is written or, on any
// error, none is. Validation problems of all objects come back together in one *APIError.
func (c *Client) Apply(ctx context.Context, objs []v1.Object) (*v1.ApplyResponse, error) {
	req := v1.ApplyRequest{Items: make([]json.RawMessage, 0, len(objs))}
	for _, o := range objs {
		data, err := encode(o)
		if err != nil {
			return nil, err
		}
		req.Items = append(req.Items, data)
	}
	body, err := encode(req)
	if err != nil {
		return nil, err
	}
	var out v1.ApplyResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/apply", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyYAML sends multi-document YAML to the apply endpoint as it is, letting the server decode it.
func (c *Client) ApplyYAML(ctx context.Context, data []byte) (*v1.ApplyResponse, error) {
	var out v1.ApplyResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/apply", body: data, contentType: "application/yaml"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
