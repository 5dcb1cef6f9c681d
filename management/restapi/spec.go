package restapi

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.yaml
var openapiSpec []byte

// Spec returns the OpenAPI 3.0 document of this API.
func Spec() []byte { return append([]byte(nil), openapiSpec...) }

// getSpec serves the spec (without a token: it holds no account data).
func (s *server) getSpec(c *call) (int, any, error) {
	return http.StatusOK, rawBody{contentType: "application/yaml", data: openapiSpec}, nil
}

// rawBody is a non-JSON response body.
type rawBody struct {
	contentType string
	data        []byte
}
