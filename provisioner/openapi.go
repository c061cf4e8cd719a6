package provisioner

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the hand-written description of the API, kept in step
// with apiRoutes by TestOpenAPICoversEveryRoute.
//
//go:embed openapi.json
var openAPIDocument []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}
