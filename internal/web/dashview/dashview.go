// Package dashview is what errand changes in asynqmon, the dashboard, on its
// way to the browser: the page loads nothing from another host (Roboto is
// served from here, and a Content-Security-Policy keeps every fetch on
// errand's own origin); the JSON it reads shows errand's model of a job
// rather than asynq's (attempts used of those allowed, the job type's
// timeout, a failure rate of jobs, not attempts); and each job links to its
// entity's timeline. It works on asynqmon's HTTP answers only: what is
// stored in Redis is asynq's, unchanged.
package dashview

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/job"
)

// fontsPath is where, under the dashboard's path, the fonts are served.
const fontsPath = "/errand/fonts/"

//go:embed fonts
var fonts embed.FS

// Options are what the view needs besides asynqmon.
type Options struct {
	// Path is the dashboard's path, without a trailing slash: "/monitoring".
	Path string
	// Asynqmon is asynqmon itself (dash may wrap it), from which the view
	// reads asynqmon's application script once, at start.
	Asynqmon http.Handler
	// Registry gives each job type's attempts and timeout.
	Registry *job.Registry
	// FailedOnDays counts the jobs of a queue that failed for good on each
	// of days (rdb.Inspector.FailedOnDays).
	FailedOnDays func(ctx context.Context, q string, days []time.Time) ([]int, error)
}

// View serves asynqmon corrected: see the package comment.
type View struct {
	dash http.Handler
	o    Options
	// bundle is the path of asynqmon's application script and patched its
	// corrected text; empty when the script could not be patched (a newer
	// asynqmon), in which case it is served as it is.
	bundle  string
	patched []byte
}

// New returns dash (asynqmon, mounted at o.Path) served through the view.
// The error says what could not be corrected in asynqmon's script; the view
// then serves that script as it is, and everything else corrected.
func New(dash http.Handler, o Options) (*View, error) {
	v := &View{dash: dash, o: o}
	name, js, err := v.appScript()
	if err != nil {
		return v, fmt.Errorf("dashboard: %w", err)
	}
	patched, err := patchScript(js, o.Path)
	if err != nil {
		return v, fmt.Errorf("dashboard: %s: %w", name, err)
	}
	v.bundle, v.patched = name, patched
	return v, nil
}

// mainScript finds asynqmon's application script in its page.
var mainScript = regexp.MustCompile(`src="([^"]*/static/js/main\.[0-9a-f]+\.chunk\.js)"`)

// appScript reads asynqmon's application script through dash itself.
func (v *View) appScript() (string, []byte, error) {
	page := record(v.o.Asynqmon, httpGet(v.o.Path+"/"))
	m := mainScript.FindSubmatch(page.body.Bytes())
	if m == nil {
		return "", nil, errors.New("asynqmon's page names no static/js/main.*.chunk.js")
	}
	name := string(m[1])
	js := record(v.o.Asynqmon, httpGet(name))
	if js.status != http.StatusOK {
		return "", nil, fmt.Errorf("%s: status %d", name, js.status)
	}
	return name, js.body.Bytes(), nil
}

func httpGet(target string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, target, nil)
	return r
}

// ServeHTTP implements http.Handler.
func (v *View) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, v.o.Path+fontsPath):
		v.serveFont(w, r, strings.TrimPrefix(p, v.o.Path+fontsPath))
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		v.dash.ServeHTTP(w, r)
		return
	case p == v.bundle && v.patched != nil:
		w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(v.patched)))
		_, _ = w.Write(v.patched)
		return
	case strings.HasPrefix(p, v.o.Path+"/api/"):
		v.serveAPI(w, r)
		return
	}
	rec := record(v.dash, r)
	body := rec.body.Bytes()
	ct := rec.header.Get("Content-Type")
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	if rec.status == http.StatusOK && strings.HasPrefix(ct, "text/html") {
		rec.header.Set("Content-Type", ct)
		nonce := newNonce()
		body = v.offlinePage(body, nonce)
		rec.header.Set("Content-Security-Policy", csp(nonce))
		rec.header.Set("Cache-Control", "no-store")
	}
	rec.send(w, body)
}

// serveFont serves one of the embedded font files (the stylesheet, the
// fonts, their license).
func (v *View) serveFont(w http.ResponseWriter, r *http.Request, name string) {
	if name == "" || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(fonts, "fonts/"+name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch path.Ext(name) {
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".woff2":
		w.Header().Set("Content-Type", "font/woff2")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	// The files change only with errand's binary.
	w.Header().Set("Cache-Control", "max-age=86400")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// externalLink is a <link> to another host: asynqmon's page asks Google
// Fonts for Roboto and for the Material Icons font (which its pages never
// use: their icons are SVG).
var externalLink = regexp.MustCompile(`<link[^>]*href="(?:https?:)?//[^"]*"[^>]*>`)

// offlinePage is asynqmon's page with every link to another host dropped,
// errand's own copy of Roboto linked instead, and nonce on each script
// (asynqmon's inline ones and errand's banner), which the CSP requires.
func (v *View) offlinePage(page []byte, nonce string) []byte {
	page = externalLink.ReplaceAll(page, nil)
	css := `<link rel="stylesheet" href="` + v.o.Path + fontsPath + `roboto.css"/>`
	if i := bytes.Index(page, []byte("</head>")); i >= 0 {
		page = append(page[:i:i], append([]byte(css), page[i:]...)...)
	}
	return bytes.ReplaceAll(page, []byte("<script"), []byte(`<script nonce="`+nonce+`"`))
}

// csp lets the page load and fetch from its own origin only. Scripts run
// only from errand's origin or with the page's nonce; styles may be inline
// because asynqmon's components write theirs at run time.
func csp(nonce string) string {
	return "default-src 'self'; script-src 'self' 'nonce-" + nonce + "'; style-src 'self' 'unsafe-inline'; " +
		"img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// recorded is a kept answer of asynqmon's, to be corrected before it is sent.
type recorded struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func record(h http.Handler, r *http.Request) *recorded {
	rec := &recorded{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, r)
	return rec
}

func (p *recorded) Header() http.Header         { return p.header }
func (p *recorded) WriteHeader(code int)        { p.status = code }
func (p *recorded) Write(b []byte) (int, error) { return p.body.Write(b) }

// send writes the kept answer with body in place of the one recorded.
func (p *recorded) send(w http.ResponseWriter, body []byte) {
	for k, vs := range p.header {
		if k != "Content-Length" {
			w.Header()[k] = vs
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.status)
	_, _ = w.Write(body)
}
