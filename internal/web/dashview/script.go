package dashview

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// scriptPatch is one change to asynqmon v0.7.2's application script (its
// minified build): every occurrence of old becomes new, and old must occur
// exactly count times, so a different asynqmon is noticed rather than
// half-patched.
type scriptPatch struct {
	what     string
	old, new string
	count    int
}

// The task detail view's row "Retry: <retried>/<max_retry>". The API
// rewrite (api.go) puts attempts there; the label follows.
const retryRow = `Object(de.jsxs)("div",{className:t.infoRow,children:[Object(de.jsxs)(fe.a,{variant:"subtitle2",className:t.infoKeyCell,children:["Retry:"," "]})`

// The ID cell of every task list's rows.
const idCell = `[cn(t.id),Object(de.jsx)(Qn.a,{title:"Copy full ID to clipboard"`

// scriptPatches are the changes, for a dashboard at root (its path).
func scriptPatches(root string) []scriptPatch {
	timeline, _ := json.Marshal(root + "/timeline?job=") // a JS string literal
	href := string(timeline) + `+encodeURIComponent(`
	return []scriptPatch{{
		what: "the task view's Attempts row and timeline link",
		old:  retryRow,
		new: `Object(de.jsxs)("div",{className:t.infoRow,children:[Object(de.jsxs)(fe.a,{variant:"subtitle2",className:t.infoKeyCell,children:["Timeline:"," "]}),` +
			`Object(de.jsx)(fe.a,{className:t.infoValueCell,children:u?Object(de.jsx)("a",{id:"errand-timeline",href:` + href + `u.id),` +
			`children:"this job's entity, every job and attempt"}):" - "})]}),` +
			`Object(de.jsxs)("div",{className:t.infoRow,children:[Object(de.jsxs)(fe.a,{variant:"subtitle2",className:t.infoKeyCell,children:["Attempts:"," "]})`,
		count: 1,
	}, {
		what:  "the task lists' attempts columns",
		old:   `{key:"retried",label:"Retried",align:"right"},{key:"max_retry",label:"Max Retry",align:"right"}`,
		new:   `{key:"retried",label:"Attempts",align:"right"},{key:"max_retry",label:"Max Attempts",align:"right"}`,
		count: 2,
	}, {
		what: "the task lists' timeline links",
		old:  idCell,
		new: `[cn(t.id),Object(de.jsx)("a",{className:"errand-timeline",href:` + href + `t.id),title:"Timeline of this job's entity",` +
			`style:{marginLeft:8,whiteSpace:"nowrap"},onClick:function(e){e.stopPropagation()},children:"timeline"}),` +
			`Object(de.jsx)(Qn.a,{title:"Copy full ID to clipboard"`,
		count: 7,
	}}
}

// patchScript applies scriptPatches to js, or returns which one does not
// fit.
func patchScript(js []byte, root string) ([]byte, error) {
	for _, p := range scriptPatches(root) {
		if n := bytes.Count(js, []byte(p.old)); n != p.count {
			return nil, fmt.Errorf("%s: the text to change occurs %d times, want %d (another asynqmon than v0.7.2?)", p.what, n, p.count)
		}
		js = bytes.ReplaceAll(js, []byte(p.old), []byte(p.new))
	}
	return js, nil
}
