package api

import _ "embed"

// OpenAPI is the OpenAPI 3 document of /v1 (openapi.json), as the server
// serves it at PathOpenAPI. It is written by hand and is the only such
// description; ctl's tests check it against what the server answers.
//
//go:embed openapi.json
var OpenAPI []byte
