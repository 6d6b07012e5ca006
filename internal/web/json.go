package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
)

// maxBody is the largest request body errand reads (1 MiB).
const maxBody = 1 << 20

// problem is an error answer.
type problem struct {
	Status int               `json:"-"`
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func (p *problem) send(w http.ResponseWriter) { writeJSON(w, p.Status, p) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// readBody reads at most maxBody bytes: a larger body is a 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, *problem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &problem{Status: http.StatusRequestEntityTooLarge, Error: fmt.Sprintf("request body is larger than %d bytes", maxBody)}
		}
		return nil, &problem{Status: http.StatusBadRequest, Error: "could not read request body"}
	}
	return body, nil
}

// validator is a request body that checks itself, returning a message per
// invalid field.
type validator interface {
	Valid() map[string]string
}

// decode reads a JSON body into v and validates it: 413 when too large, 400
// when malformed, 422 when invalid.
func decode[T validator](w http.ResponseWriter, r *http.Request) (T, []byte, *problem) {
	var v T
	body, p := readBody(w, r)
	if p != nil {
		return v, nil, p
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return v, nil, &problem{Status: http.StatusUnsupportedMediaType, Error: "Content-Type must be application/json"}
	}
	if p := notObject(body); p != nil {
		return v, nil, p
	}
	if err := json.Unmarshal(body, &v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return v, nil, &problem{Status: http.StatusUnprocessableEntity, Error: "validation failed",
				Fields: map[string]string{te.Field: "must be a " + jsonKind(te.Type.Kind().String())}}
		}
		return v, nil, &problem{Status: http.StatusBadRequest, Error: "malformed JSON: " + err.Error()}
	}
	unknown := unknownFields(body, v)
	if fields := v.Valid(); len(fields)+len(unknown) > 0 {
		fields = maps.Collect(maps.All(fields))
		maps.Copy(fields, unknown)
		return v, nil, &problem{Status: http.StatusUnprocessableEntity, Error: "validation failed", Fields: fields}
	}
	return v, body, nil
}

// notObject refuses a body that is valid JSON but not an object: `null` would
// leave a pointer T nil (and Valid would panic on it), and `[]`, `"x"` or `1`
// are no request errand takes. Malformed JSON is left to the decoder, whose
// error says where it broke.
func notObject(body []byte) *problem {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' || !json.Valid(body) {
		return nil
	}
	return &problem{Status: http.StatusBadRequest, Error: "request body must be a JSON object"}
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "int", "int64", "float64", "uint", "int32":
		return "number"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice":
		return "list"
	}
	return k
}
