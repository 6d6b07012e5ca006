package web

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errandhq/errand/internal/limit"
)

// asynqmon, the dashboard, knows queues but not services: a service held
// after it throttled us (every worker waits before calling it, on every
// queue) would not show there. So errand adds one thing to its page: a
// banner naming each held service and until when, rendered into the page and
// refreshed every few seconds from servicesPath, behind the dashboard's own
// login. Nothing shows while no service is held.

// BannerColor is the held-service banner's background.
const BannerColor = "#ffe0b2"

// servicesPath is where, under the dashboard's path, the banner is served.
const servicesPath = "/errand/services"

// withServiceBanner serves dash (mounted at path) with the banner added to
// its HTML page, and the banner alone at path+servicesPath.
func (s *Server) withServiceBanner(dash http.Handler, path string) http.Handler {
	frag := path + servicesPath
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == frag {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte(s.serviceBanner(r.Context())))
			return
		}
		last := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if r.Method != http.MethodGet || strings.HasPrefix(r.URL.Path, path+"/api/") || strings.Contains(last, ".") {
			dash.ServeHTTP(w, r) // the dashboard's API and its static files, as they are
			return
		}
		rec := &pageRecorder{header: http.Header{}, status: http.StatusOK}
		dash.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		ct := rec.header.Get("Content-Type")
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		if i := bytes.Index(body, []byte("<body>")); rec.status == http.StatusOK && strings.HasPrefix(ct, "text/html") && i >= 0 {
			at := i + len("<body>")
			page := make([]byte, 0, len(body)+1024)
			page = append(page, body[:at]...)
			page = append(page, s.serviceBanner(r.Context())...)
			page = append(page, bannerScript(frag)...)
			page = append(page, body[at:]...)
			body = page
			rec.header.Set("Content-Type", ct)
			rec.header.Set("Cache-Control", "no-store")
		}
		for k, v := range rec.header {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.status)
		_, _ = w.Write(body)
	})
}

// serviceBanner is the banner's HTML: an element with id errand-services,
// empty while no service is held (or Redis cannot say).
func (s *Server) serviceBanner(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	now := time.Now()
	sts, err := limit.Statuses(ctx, s.Redis, s.Config.Limits, now)
	var b strings.Builder
	b.WriteString(`<div id="errand-services" role="status">`)
	if err == nil {
		held := 0
		for _, st := range sts {
			if !st.Held(now) {
				continue
			}
			if held == 0 {
				// Fixed over the foot of the page: asynqmon's own bar is
				// fixed at the top and would hide it there.
				b.WriteString(`<div style="position:fixed;left:0;right:0;bottom:0;z-index:2000;background:` + BannerColor +
					`;color:#4e2600;border-top:2px solid #fb8c00;padding:10px 16px;font:15px/1.5 sans-serif">`)
			} else {
				b.WriteString("<br>")
			}
			held++
			in := max(st.HeldUntil.Sub(now).Round(time.Second), time.Second)
			b.WriteString("Service <strong>" + html.EscapeString(st.Service) + "</strong> paused: held until " +
				html.EscapeString(st.HeldUntil.Format("15:04:05 MST")) + " (in " + in.String() +
				") because it throttled errand; its jobs wait on every worker and queue, using no attempt.")
		}
		if held > 0 {
			b.WriteString("</div>")
		}
	}
	b.WriteString("</div>")
	return b.String()
}

// bannerScript refreshes the banner every 3 s from frag.
func bannerScript(frag string) string {
	js, _ := json.Marshal(frag) // escapes <, > and &: safe inside a script element
	return `<script>setInterval(function(){fetch(` + string(js) + `,{credentials:"same-origin",cache:"no-store"})` +
		`.then(function(r){return r.ok?r.text():null}).then(function(t){var e=document.getElementById("errand-services");` +
		`if(t!==null&&e){e.outerHTML=t}}).catch(function(){})},3000)</script>`
}

// pageRecorder keeps a dashboard answer so the banner can be added to it.
type pageRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (p *pageRecorder) Header() http.Header         { return p.header }
func (p *pageRecorder) WriteHeader(code int)        { p.status = code }
func (p *pageRecorder) Write(b []byte) (int, error) { return p.body.Write(b) }
