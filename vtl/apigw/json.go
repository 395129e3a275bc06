package apigw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/wsgate/wsgate/vtl"
)

// maxJSONDepth bounds how deeply nested a body or a parseJson argument may
// be; deeper input is refused as not JSON.
const maxJSONDepth = 256

var errTooDeep = fmt.Errorf("JSON nested deeper than %d", maxJSONDepth)

// parseJSON decodes one JSON document into template values: objects as
// insertion-ordered *vtl.Map, arrays as JSON lists (they render as JSON,
// as json-smart's JSONArray does on AWS), integers as int64 and other
// numbers as float64.
func parseJSON(data string) (any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(data)))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, errTooDeep
		}
		if t == '[' {
			l := &vtl.List{Items: []any{}, JSON: true}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l.Items = append(l.Items, v)
			}
			_, err := dec.Token()
			return l, err
		}
		m := vtl.NewMap(4)
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			m.Put(k.(string), v)
		}
		_, err := dec.Token()
		return m, err
	case json.Number:
		return vtl.Value(t), nil
	}
	return tok, nil // string, bool, nil
}

// deepCopy copies the collections of a parsed document, so what a
// template changes in one $input.path result is not seen by the next.
func deepCopy(v any) any {
	switch x := v.(type) {
	case *vtl.List:
		l := &vtl.List{Items: make([]any, len(x.Items)), JSON: x.JSON}
		for i, it := range x.Items {
			l.Items[i] = deepCopy(it)
		}
		return l
	case *vtl.Map:
		m := vtl.NewMap(x.Len())
		for _, k := range x.Keys() {
			e, _ := x.Get(k)
			m.Put(k, deepCopy(e))
		}
		return m
	}
	return v
}
