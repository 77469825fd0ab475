// The local images of the real node (hack/realnode): a pause binary and the sample app.
// Standard library only, so there is nothing to download and no go.sum.
module greenlight.dev/hack/images

go 1.26.0
