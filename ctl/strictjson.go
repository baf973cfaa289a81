package ctl

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"sync"
)

// checkKeys walks the JSON value data along the Go type t it is to be
// decoded into, and refuses what encoding/json would otherwise guess at: a
// key given twice in one object (json takes the last), and a key that
// names a struct field in another case ("NAME" for "name": json folds
// case). Unknown keys are left to the decoder's DisallowUnknownFields; a
// json.RawMessage is checked when it is decoded in its turn. Syntax errors
// are left to the decoder too: checkKeys then returns nil.
func checkKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := walkKeys(dec, t, "")
	var ke *keyError
	if errors.As(err, &ke) {
		return err
	}
	return nil
}

// keyError is a key checkKeys refuses.
type keyError struct{ err error }

func (e *keyError) Error() string { return e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

var (
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walkKeys reads one value from dec. t is what it decodes into; nil for a
// value whose keys are only checked for duplicates.
func walkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t == rawMessageType || reflect.PointerTo(t).Implements(unmarshalerType) || reflect.PointerTo(t).Implements(textUnmarshaler)) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := walkKeys(dec, elem, path+"[]"); err != nil {
				return err
			}
		}
	case '{':
		var fields map[string]reflect.Type
		var elem reflect.Type
		switch {
		case t != nil && t.Kind() == reflect.Struct:
			fields = jsonFields(t)
		case t != nil && t.Kind() == reflect.Map:
			elem = t.Elem()
		}
		seen := make(map[string]bool)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			where := key
			if path != "" {
				where = path + "." + key
			}
			if seen[key] {
				return &keyError{badRequest(key, "invalid JSON: %s given twice", where)}
			}
			seen[key] = true
			vt := elem
			if fields != nil {
				ft, ok := fields[key]
				if !ok {
					for name := range fields {
						if strings.EqualFold(name, key) {
							return &keyError{badRequest(key, "invalid JSON: unknown field %q (names are case-sensitive: %q)", where, name)}
						}
					}
				}
				vt = ft
			}
			if err := walkKeys(dec, vt, where); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

// jsonFields maps the JSON names of struct type t's fields, promoted ones
// of embedded structs included, to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	// A field of the struct itself hides a promoted one of the same name.
	for _, et := range embedded {
		for k, v := range jsonFields(et) {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
	fieldCache.Store(t, m)
	return m
}
