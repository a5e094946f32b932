// Package strictjson decodes JSON that crosses a trust boundary (API
// requests, Kubernetes AdmissionReviews, licensing calls) so that every
// reader of the same bytes sees the same value.
//
// encoding/json takes the last of duplicate keys and matches keys to
// fields ignoring case: {"image": "a", "Image": "b"} reads as "b" here and
// as "a" in a case-sensitive reader such as the Kubernetes API server. This
// package refuses both, before encoding/json decodes:
//
//   - a key that appears twice in one object, at any depth (also inside
//     json.RawMessage, maps and interface values);
//   - a key that names a field of the destination only when case is
//     ignored (encoding/json would have filled that field).
//
// Unmarshal ignores other unknown keys as encoding/json does;
// UnmarshalKnown refuses them too.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// The errors a *KeyError wraps.
var (
	ErrDuplicateKey = errors.New("duplicate key")
	ErrCaseMismatch = errors.New("field names are case-sensitive")
	ErrUnknownField = errors.New("unknown field")
)

// ErrTrailingData is UnmarshalKnown's error for data after the value.
var ErrTrailingData = errors.New("unexpected data after the JSON value")

// KeyError is a key this package refuses. Its message names the key and
// where it is, never a value.
type KeyError struct {
	Err  error  // ErrDuplicateKey, ErrCaseMismatch or ErrUnknownField
	Path string // the object holding Key, as "request.object" or "items[2]"; "" for the top level
	Key  string
	Want string // ErrCaseMismatch: the field's name
}

func (e *KeyError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	switch e.Err {
	case ErrDuplicateKey:
		return fmt.Sprintf("duplicate key %q%s", e.Key, where)
	case ErrCaseMismatch:
		return fmt.Sprintf("unknown field %q%s: field names are case-sensitive; did you mean %q?", e.Key, where, e.Want)
	}
	return fmt.Sprintf("unknown field %q%s", e.Key, where)
}

func (e *KeyError) Unwrap() error { return e.Err }

// Unmarshal is json.Unmarshal after Check(data, v, false).
func Unmarshal(data []byte, v any) error {
	if err := keyError(Check(data, v, false)); err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

// keyError keeps a *KeyError; malformed JSON is left to encoding/json,
// whose errors say where.
func keyError(err error) error {
	if _, ok := errors.AsType[*KeyError](err); ok {
		return err
	}
	return nil
}

// UnmarshalKnown is json.Unmarshal with unknown fields refused, after
// Check(data, v, true).
func UnmarshalKnown(data []byte, v any) error {
	if err := keyError(Check(data, v, true)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailingData // as json.Unmarshal: one value only
	}
	return nil
}

// Check reads the first JSON value of data and returns a *KeyError for the
// first key that decoding it into v (a pointer, as json.Unmarshal takes)
// would read differently than a strict reader: a duplicate, a key that
// matches a field of v's type only ignoring case, and, with refuseUnknown,
// a key that matches no field. Malformed JSON returns another error
// (json.Unmarshal says better where); data after the value is not read.
func Check(data []byte, v any, refuseUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	c := checker{dec: dec, refuseUnknown: refuseUnknown}
	var t reflect.Type
	if v != nil {
		t = reflect.TypeOf(v)
	}
	return c.value(t, "")
}

type checker struct {
	dec           *json.Decoder
	refuseUnknown bool
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// shape is the type whose keys are checked: t without pointers, or nil
// when t decodes itself or takes anything (an interface), whose keys are
// then only checked for duplicates.
func shape(t reflect.Type) reflect.Type {
	for t != nil {
		if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

func (c *checker) value(t reflect.Type, path string) error {
	tok, err := c.dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		return c.object(shape(t), path)
	case json.Delim('['):
		return c.array(shape(t), path)
	}
	return nil
}

func (c *checker) array(t reflect.Type, path string) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	for i := 0; c.dec.More(); i++ {
		if err := c.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // ]
	return err
}

func (c *checker) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var mapElem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = fieldsOf(t)
	case t.Kind() == reflect.Map:
		mapElem = t.Elem()
	}
	seen := make(map[string]bool)
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return &KeyError{Err: ErrDuplicateKey, Path: path, Key: key}
		}
		seen[key] = true
		sub := key
		if path != "" {
			sub = path + "." + key
		}
		var ft reflect.Type
		switch {
		case fields != nil:
			var ok bool
			if ft, ok = fields[key]; !ok {
				for name := range fields {
					if strings.EqualFold(name, key) { // as encoding/json folds
						return &KeyError{Err: ErrCaseMismatch, Path: path, Key: key, Want: name}
					}
				}
				if c.refuseUnknown {
					return &KeyError{Err: ErrUnknownField, Path: path, Key: key}
				}
			}
		case mapElem != nil:
			ft = mapElem
		}
		if err := c.value(ft, sub); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // }
	return err
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// fieldsOf lists the JSON names of a struct's fields as encoding/json sees
// them: tag names, promoted fields of embedded structs (the shallowest
// wins, a tagged one over an untagged one at the same depth, ambiguous
// ones are dropped), "-" skipped.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	type found struct {
		t      reflect.Type
		depth  int
		tagged bool
		dup    bool
	}
	all := map[string]*found{}
	visited := map[reflect.Type]bool{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		if visited[t] {
			return
		}
		visited[t] = true
		defer delete(visited, t)
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if !f.IsExported() && et.Kind() != reflect.Struct {
					continue
				}
				if name == "" && et.Kind() == reflect.Struct {
					walk(et, depth+1)
					continue
				}
			} else if !f.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = f.Name
			}
			switch old, ok := all[name]; {
			case !ok || depth < old.depth:
				all[name] = &found{t: ft, depth: depth, tagged: tagged}
			case depth == old.depth && tagged && !old.tagged:
				*old = found{t: ft, depth: depth, tagged: tagged}
			case depth == old.depth && tagged == old.tagged:
				old.dup = true
			}
		}
	}
	walk(t, 0)
	m := make(map[string]reflect.Type, len(all))
	for name, f := range all {
		if !f.dup {
			m[name] = f.t
		}
	}
	fieldCache.Store(t, m)
	return m
}
