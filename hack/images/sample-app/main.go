// sample-app: the HTTP server (and queue worker) that the real-node e2e tests and `make demo` release.
//
//	GET /version   the version (APP_VERSION, set in the image; a pod's env overrides it)
//	GET /healthz   the readiness endpoint: 200 once ready, else 503
//	GET /          "<version> <pod>"
//	GET /role      the pod's role: its greenlight.dev/role label read from ROLE_FILE ("candidate",
//	               "live", "draining"), "none" without ROLE_FILE or without the label
//	GET /consumed  how many queue messages this process has consumed (worker mode; else 0)
//	GET /ws/       a WebSocket that echoes each message as "<version> <message>"
//	GET /metrics   Prometheus metrics (client_golang; its own registry, without the Go runtime and
//	               process collectors: a scrape is about 120 lines). Only the measured requests,
//	               those to /version and to / (with any path no other endpoint takes, as path="/"):
//	                 sample_app_request_duration_seconds{path,code}  histogram, 1 ms .. 2 s
//	                 sample_app_requests_total{path,code}            counter
//	               (path "/" or "/version", code "200" or "500"; all four series from the start, at
//	               0), and sample_app_info{version} 1. No pod or revision label: the scraper adds
//	               the pod's labels (template hash, role) as target labels.
//
// Switches, read once at start (so changing one in a Release's template makes a new revision):
//
//	PORT=8080            listen port
//	READY_AFTER=5s       /healthz answers 503 for this long after start (slow to become ready)
//	FAIL_READINESS=true  /healthz never answers 200 (a candidate that never becomes ready)
//	FAIL_PERCENT=10      this share of requests to / and /version answers 500 (code="500" in /metrics)
//	RESPONSE_DELAY=40ms  each request to / and /version sleeps this long before it is answered
//	                     (failed ones too), give or take a uniform jitter: a slower candidate
//	                     (52ms against 40ms: +30%) differs measurably, though not in every request
//	RESPONSE_JITTER=0.25 the jitter of RESPONSE_DELAY, a fraction of it: uniform in ±25% (0..1)
//	SHUTDOWN_DELAY=2s    after SIGTERM keep serving this long, then drain in-flight requests
//	ROLE_FILE=/etc/podinfo/labels
//	                     a Downward API file of the pod's labels (fieldRef metadata.labels: lines
//	                     like greenlight.dev/role="live"), read at start and every 200 ms (the
//	                     kubelet swaps it in place); each role change is logged
//	DRAIN_ON_DRAINING=true
//	                     while the role is "draining": no keep-alive (each connection's next
//	                     response carries Connection: close, then it is closed; an idle one is
//	                     not cut, which would race a request on its way) and open WebSockets are closed with
//	                     1001 going away (new ones at once); keep-alive again on any other role
//	WORKER_QUEUE=jobs    worker mode: consume the Redis list "jobs" (BLPOP, 200 ms at a time) while
//	                     the role is "live" (always, without ROLE_FILE); each message M is recorded
//	                     by RPUSH to "jobs:done" as "M <version> <pod> <role when popped>", then
//	                     counted. SIGTERM stops consuming at once; the message in hand is recorded
//	                     first. HTTP is served as without it (readiness probes work the same).
//	REDIS_ADDR=host:port the Redis of worker mode (required with WORKER_QUEUE)
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

const (
	roleLabel    = "greenlight.dev/role"
	noRole       = "none"
	draining     = "draining"
	live         = "live"
	rolePoll     = 200 * time.Millisecond
	popTimeout   = "0.2" // seconds: go-redis's BLPop rounds its timeout up to whole seconds
	retryBackoff = 500 * time.Millisecond
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

// metrics: the measured requests, exposed on /metrics.
type metrics struct {
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// buckets: 1 ms .. 2 s, 5 ms apart from 10 to 60 ms (where the test bed's RESPONSE_DELAYs and
// their jitter lie), so a quantile tells 40 ms from 52 ms; factor-1.5 buckets would put both in
// one bucket (38..58 ms).
var buckets = []float64{
	0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.055, 0.06,
	0.07, 0.08, 0.09, 0.1, 0.125, 0.15, 0.2, 0.3, 0.5, 1, 2,
}

// newMetrics registers the app's metrics in a registry of their own (no Go runtime or process
// collectors) and returns them with the /metrics handler.
func newMetrics(version string) (*metrics, http.Handler) {
	reg := prometheus.NewRegistry()
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sample_app_request_duration_seconds",
			Help:    "Time to answer a request to / or /version (RESPONSE_DELAY included), by path and status code.",
			Buckets: buckets,
		}, []string{"path", "code"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sample_app_requests_total",
			Help: "Requests to / and /version answered, by path and status code.",
		}, []string{"path", "code"}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sample_app_info",
		Help: "Always 1; its label is the app's version (APP_VERSION).",
	}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	reg.MustRegister(m.duration, m.requests, info)
	// Every series from the start: an error ratio is 0, not "no data", before the first failure.
	for _, path := range []string{"/", "/version"} {
		for _, code := range []string{"200", "500"} {
			m.duration.WithLabelValues(path, code)
			m.requests.WithLabelValues(path, code)
		}
	}
	return m, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// recorder remembers the status code a handler answers.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// jittered: d give or take a uniform share of it, in [d*(1-jitter), d*(1+jitter)].
func jittered(d time.Duration, jitter float64) time.Duration {
	return time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1)))
}

// readRole: the role label of a Downward API labels file (key="quoted value" per line), or noRole.
// The file is opened anew on each call: the kubelet replaces it through a symlink swap.
func readRole(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok || key != roleLabel {
			continue
		}
		role, err := strconv.Unquote(value)
		if err != nil {
			return "", fmt.Errorf("%s: %s=%s: %v", path, key, value, err)
		}
		if role == "" {
			return noRole, nil
		}
		return role, nil
	}
	return noRole, nil
}

// watchRole polls the role file and calls changed(from, to) on each change, from this goroutine.
// A read error keeps the last role (logged once until the file reads again).
func watchRole(path string, role *atomic.Value, changed func(from, to string)) {
	lastErr := ""
	for range time.Tick(rolePoll) {
		r, err := readRole(path)
		if err != nil {
			if err.Error() != lastErr {
				log.Printf("role file: %v (keeping role %s)", err, role.Load())
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		if old := role.Load().(string); r != old {
			log.Printf("role %s -> %s", old, r)
			changed(old, r)
			role.Store(r) // after its effects: once /role answers it, they are in place
		}
	}
}

// sockets: the open WebSockets, closed with 1001 going away while draining.
type sockets struct {
	mu       sync.Mutex
	open     map[*websocket.Conn]struct{}
	draining bool
}

func (s *sockets) add(c *websocket.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.open[c] = struct{}{}
	return true
}

func (s *sockets) remove(c *websocket.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, c)
}

func (s *sockets) drain(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = on
	if !on {
		return
	}
	if len(s.open) > 0 {
		log.Printf("draining: closing %d WebSocket(s) with 1001 going away", len(s.open))
	}
	for c := range s.open {
		go c.Close(websocket.StatusGoingAway, draining) // the close handshake waits for the peer
	}
}

// work consumes queue while consuming() says so, until ctx is done; the message in hand is always
// recorded (RPUSH to queue:done, retried until Redis takes it) before the next check of ctx.
func work(ctx context.Context, rdb *redis.Client, queue, record string, consuming func() bool,
	role func() string, consumed *atomic.Int64) {
	failing := false
	fail := func(what string, err error) {
		if !failing {
			log.Printf("worker: %s: %v (retrying every %s)", what, err, retryBackoff)
			failing = true
		}
		time.Sleep(retryBackoff)
	}
	recovered := func() {
		if failing {
			log.Printf("worker: Redis answers again")
			failing = false
		}
	}
	for ctx.Err() == nil {
		if !consuming() {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		// not ctx: cancelling a blocked pop drops the connection, and a message Redis has
		// just popped for it would be lost
		popped, err := rdb.Do(context.Background(), "BLPOP", queue, popTimeout).StringSlice()
		if err != nil && !errors.Is(err, redis.Nil) {
			fail("BLPOP "+queue, err)
			continue
		}
		recovered()
		if err != nil {
			continue // redis.Nil: nothing within popTimeout
		}
		done := fmt.Sprintf("%s %s %s", popped[1], record, role()) // popped: [queue, message]
		for {
			err := rdb.RPush(context.Background(), queue+":done", done).Err()
			if err == nil {
				break
			}
			fail("RPUSH "+queue+":done "+strconv.Quote(done), err)
		}
		recovered()
		consumed.Add(1)
	}
	log.Printf("worker: stopped after %d message(s)", consumed.Load())
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
	responseDelay := duration("RESPONSE_DELAY")
	jitter, err := strconv.ParseFloat(env("RESPONSE_JITTER", "0.25"), 64)
	if err != nil || jitter < 0 || jitter > 1 {
		log.Fatalf("RESPONSE_JITTER: %q is not a fraction from 0 to 1", os.Getenv("RESPONSE_JITTER"))
	}
	shutdownDelay := duration("SHUTDOWN_DELAY")
	roleFile := os.Getenv("ROLE_FILE")
	drainOnDraining, _ := strconv.ParseBool(env("DRAIN_ON_DRAINING", "false"))
	queue := os.Getenv("WORKER_QUEUE")
	redisAddr := os.Getenv("REDIS_ADDR")
	if queue != "" && redisAddr == "" {
		log.Fatal("WORKER_QUEUE needs REDIS_ADDR=host:port")
	}

	var role atomic.Value
	role.Store(noRole)
	if roleFile != "" {
		r, err := readRole(roleFile)
		if err != nil {
			log.Printf("role file: %v (role %s until it reads)", err, noRole)
			r = noRole
		}
		role.Store(r)
		log.Printf("role %s (from %s)", r, roleFile)
	}
	currentRole := func() string { return role.Load().(string) }
	var consumed atomic.Int64
	socks := &sockets{open: map[*websocket.Conn]struct{}{}}

	answer := func(w http.ResponseWriter, body string) {
		if failPercent > 0 && rand.Float64()*100 < failPercent {
			http.Error(w, "injected failure ("+version+")", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, body)
	}
	plain := func(w http.ResponseWriter, body string) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, body)
	}
	m, metricsHandler := newMetrics(version)
	// measure: the handler of a measured path, delayed by RESPONSE_DELAY and counted by its code
	measure := func(path string, h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			if responseDelay > 0 {
				time.Sleep(jittered(responseDelay, jitter))
			}
			rec := &recorder{ResponseWriter: w}
			h(rec, r)
			code := strconv.Itoa(cmp.Or(rec.code, http.StatusOK))
			m.duration.WithLabelValues(path, code).Observe(time.Since(start).Seconds())
			m.requests.WithLabelValues(path, code).Inc()
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/version", measure("/version", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, version)
	}))
	mux.Handle("/metrics", metricsHandler)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if failReadiness || time.Now().Before(readyAt) {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/role", func(w http.ResponseWriter, _ *http.Request) { plain(w, currentRole()) })
	mux.HandleFunc("/consumed", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, strconv.FormatInt(consumed.Load(), 10))
	})
	mux.HandleFunc("/ws/", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return // Accept has answered the request
		}
		defer c.CloseNow()
		if !socks.add(c) {
			c.Close(websocket.StatusGoingAway, draining)
			return
		}
		defer socks.remove(c)
		ctx := context.Background() // the connection is hijacked: Close ends the reads
		for {
			typ, msg, err := c.Read(ctx)
			if err != nil {
				return
			}
			if err := c.Write(ctx, typ, append([]byte(version+" "), msg...)); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", measure("/", func(w http.ResponseWriter, _ *http.Request) {
		answer(w, version+" "+pod)
	}))

	// Draining: each connection's next response carries Connection: close and the server
	// closes it after that response. Idle connections are not cut: a client may be sending on
	// one at that instant, and its request would fail (the keep-alive race).
	var closing atomic.Bool
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if closing.Load() {
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	})
	srv := &http.Server{Addr: ":" + env("PORT", "8080"), Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	drain := func(on bool) {
		if !drainOnDraining {
			return
		}
		closing.Store(on)
		socks.drain(on)
		if on {
			log.Printf("draining: keep-alive off, WebSockets closed")
		} else {
			log.Printf("not draining: keep-alive on")
		}
	}
	if currentRole() == draining {
		drain(true)
	}
	if roleFile != "" {
		go watchRole(roleFile, &role, func(from, to string) {
			if (from == draining) != (to == draining) {
				drain(to == draining)
			}
		})
	}

	workCtx, stopWork := context.WithCancel(context.Background())
	workDone := make(chan struct{})
	if queue != "" {
		rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
		record := version + " " + pod
		if pod == "" {
			record = version + " -"
		}
		consuming := func() bool { return roleFile == "" || currentRole() == live }
		when := "always (no ROLE_FILE)"
		if roleFile != "" {
			when = "while the role is live"
		}
		log.Printf("worker: queue %s on %s, consuming %s", queue, redisAddr, when)
		go func() {
			defer close(workDone)
			work(workCtx, rdb, queue, record, consuming, currentRole, &consumed)
		}()
	} else {
		close(workDone)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	shutDown := make(chan struct{})
	go func() {
		<-stop
		stopWork()
		time.Sleep(shutdownDelay)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		close(shutDown)
	}()
	log.Printf("sample-app %s listening on %s", version, srv.Addr)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	<-shutDown // Shutdown returns once in-flight requests are done (ListenAndServe at once)
	<-workDone
}
