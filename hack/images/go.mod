// The local images of the real node (hack/realnode): a pause binary and the sample app.
// The pause binary is standard library only; the sample app uses go-redis and coder/websocket
// (pinned here and in go.sum, fetched from the Go module proxy by the first build).
module greenlight.dev/hack/images

go 1.26.0

require (
	github.com/coder/websocket v1.8.15
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)
