// sample-app: the HTTP server that the real-node e2e tests and `make demo` release.
//
//	GET /version   the version (APP_VERSION, set in the image; a pod's env overrides it)
//	GET /healthz   the readiness endpoint: 200 once ready, else 503
//	GET /          "<version> <pod>"
//
// Switches, read once at start (so changing one in a Release's template makes a new revision):
//
//	PORT=8080            listen port
//	READY_AFTER=5s       /healthz answers 503 for this long after start (slow to become ready)
//	FAIL_READINESS=true  /healthz never answers 200 (a candidate that never becomes ready)
//	FAIL_PERCENT=10      this share of requests to / and /version answers 500
//	SHUTDOWN_DELAY=2s    after SIGTERM keep serving this long, then drain in-flight requests
package main

import (
	"context"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func duration(name string) time.Duration {
	d, err := time.ParseDuration(env(name, "0s"))
	if err != nil {
		log.Fatalf("%s: %v", name, err)
	}
	return d
}

func main() {
	version := env("APP_VERSION", "unknown")
	pod := env("HOSTNAME", "")
	readyAt := time.Now().Add(duration("READY_AFTER"))
	failReadiness, _ := strconv.ParseBool(env("FAIL_READINESS", "false"))
	failPercent, err := strconv.ParseFloat(env("FAIL_PERCENT", "0"), 64)
	if err != nil {
		log.Fatalf("FAIL_PERCENT: %v", err)
	}
	shutdownDelay := duration("SHUTDOWN_DELAY")

	answer := func(w http.ResponseWriter, body string) {
		if failPercent > 0 && rand.Float64()*100 < failPercent {
			http.Error(w, "injected failure ("+version+")", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, body)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) { answer(w, version) })
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if failReadiness || time.Now().Before(readyAt) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { answer(w, version+" "+pod) })

	srv := &http.Server{Addr: ":" + env("PORT", "8080"), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		time.Sleep(shutdownDelay)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("sample-app %s listening on %s", version, srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
