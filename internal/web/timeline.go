package web

import (
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/errandhq/errand/internal/history"
	"github.com/errandhq/errand/internal/job"
	"github.com/errandhq/errand/internal/store"
)

// entityProblem is the 422 of a malformed entity, naming it.
func entityProblem(entity string) *problem {
	return &problem{Status: http.StatusUnprocessableEntity, Error: "validation failed", Fields: map[string]string{
		"entity": "must be a kind and an id such as user:42 or order:1001, not " + strconv.Quote(entity)}}
}

// handleTimeline answers GET /api/timeline?entity=user:42: every job kept for
// the entity, oldest first (none for an entity errand never saw).
func (s *Server) handleTimeline() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entity := r.URL.Query().Get("entity")
		if !job.ValidEntity(entity) {
			entityProblem(entity).send(w)
			return
		}
		tl, err := history.Of(r.Context(), s.Store, entity)
		if err != nil {
			s.Log.Error("api: timeline", "error", err.Error())
			(&problem{Status: http.StatusInternalServerError, Error: "internal error"}).send(w)
			return
		}
		writeJSON(w, http.StatusOK, tl)
	})
}

// withTimeline serves the dashboard's timeline page at
// <dashboard.path>/timeline (?entity=user:42, or ?job=<id> for the timeline of
// that job's entity), and everything else under the dashboard with next. It
// sits inside dashboardAuth, behind the same host, CSRF and login checks.
func (s *Server) withTimeline(path string, next http.Handler) http.Handler {
	page := strings.TrimRight(path, "/") + "/timeline"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != page && r.URL.Path != page+"/" {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		s.timelinePage(w, r, path)
	})
}

// timelineView is what the page's template shows.
type timelineView struct {
	Dashboard, Entity, Job, Problem string
	Jobs                            []store.TimelineJob
}

func (s *Server) timelinePage(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	v := timelineView{Dashboard: path + "/", Entity: q.Get("entity"), Job: q.Get("job")}
	status := http.StatusOK
	switch {
	case v.Job != "" && v.Entity == "":
		entity, err := s.Store.JobEntity(r.Context(), v.Job)
		switch {
		case errors.Is(err, store.ErrNotFound):
			status, v.Problem = http.StatusNotFound, "errand keeps no history of job "+v.Job+" (unknown, or older than history.retention)."
		case err != nil:
			s.Log.Error("dashboard: timeline", "error", err.Error())
			status, v.Problem = http.StatusInternalServerError, "the history could not be read; see the serve log."
		case entity == "":
			v.Problem = "job " + v.Job + " is for no user or order (an ops job): it has no timeline."
		default:
			v.Entity = entity
		}
	case v.Entity != "" && !job.ValidEntity(v.Entity):
		status, v.Problem = http.StatusUnprocessableEntity, strconv.Quote(v.Entity)+" is not an entity: give a kind and an id, such as user:42 or order:1001."
	}
	if v.Problem == "" && v.Entity != "" {
		tl, err := history.Of(r.Context(), s.Store, v.Entity)
		if err != nil {
			s.Log.Error("dashboard: timeline", "error", err.Error())
			status, v.Problem = http.StatusInternalServerError, "the history could not be read; see the serve log."
		}
		v.Jobs = tl.Jobs
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Nothing on the page comes from elsewhere: no script, no font, no image.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := timelineTemplate.Execute(w, v); err != nil {
		s.Log.Error("dashboard: timeline page", "error", err.Error())
	}
}

var timelineTemplate = template.Must(template.New("timeline").Funcs(template.FuncMap{
	"inc": func(i int) int { return i + 1 },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>errand — timeline{{with .Entity}} of {{.}}{{end}}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 24px; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { text-align: left; padding: 4px 12px 4px 0; vertical-align: top; font-size: 14px; }
tr.job td { border-top: 1px solid #ddd; font-weight: 600; }
td.failed { color: #b00020; } td.succeeded { color: #1b5e20; }
pre { margin: 0; white-space: pre-wrap; font-size: 13px; }
.problem { color: #b00020; }
</style></head>
<body>
<p><a href="{{.Dashboard}}">← dashboard</a></p>
<h1>Timeline{{with .Entity}} of {{.}}{{end}}</h1>
<form method="get"><label>Entity <input name="entity" value="{{.Entity}}" placeholder="user:42 or order:1001"></label> <button>Show</button></form>
{{with .Problem}}<p class="problem">{{.}}</p>{{end}}
{{if and .Entity (not .Problem)}}{{if .Jobs}}
<table>
<tr><th>time</th><th>job</th><th>queue</th><th>state</th><th>detail</th></tr>
{{range .Jobs}}{{$job := .}}
<tr class="job"><td>{{.QueuedAt.UTC.Format "2006-01-02 15:04:05.000 UTC"}}</td><td>{{.Type}}</td><td>{{.Queue}}</td><td>{{.State}}</td><td>queued as <code id="{{.ID}}">{{.ID}}</code>{{if eq .ID $.Job}} ◀{{end}}</td></tr>
{{range $i, $a := .Attempts}}
<tr><td>{{$a.At.UTC.Format "2006-01-02 15:04:05.000 UTC"}}</td><td>attempt {{inc $i}}</td><td></td>{{if $a.Error}}<td class="failed">failed</td><td><pre>{{$a.Error}}</pre></td>{{else}}<td class="succeeded">succeeded</td><td></td>{{end}}</tr>
{{end}}{{end}}
</table>
{{else}}<p>No jobs for {{.Entity}}.</p>{{end}}{{end}}
</body></html>
`))
