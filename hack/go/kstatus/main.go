// kstatus: prints the kstatus verdict (sigs.k8s.io/cli-utils/pkg/kstatus) of each object in a
// JSON document read from stdin (one object or a List), one line each: "<kind>/<name> <status>".
// Greenlight's e2e tests use it to check that Release and ReleaseGroup conditions mean to kstatus
// (Flux's health checks, kubectl-style waiters) what the Release's phase says.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(raw, &doc); err != nil { // numbers as int64, as the API has them
		fail(err)
	}
	items := []interface{}{doc}
	if list, ok := doc["items"].([]interface{}); ok {
		items = list
	}
	for _, item := range items {
		obj := &unstructured.Unstructured{Object: item.(map[string]interface{})}
		result, err := status.Compute(obj)
		if err != nil {
			fail(err)
		}
		fmt.Printf("%s/%s %s\n", obj.GetKind(), obj.GetName(), result.Status)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(2)
}
