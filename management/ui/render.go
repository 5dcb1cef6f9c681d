package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// static is the static/ directory; assetVersion maps each file to a short
// hash of its content, appended to its URL so browsers may cache it long.
var (
	static, _    = fs.Sub(staticFS, "static")
	assetVersion = hashAssets()
)

func hashAssets() map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(static, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
}

// staticHandler serves the embedded assets (no directory listings).
func staticHandler() http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := assetVersion[r.URL.Path]; !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// templates holds one parsed template set per page, each with the layout.
type templates struct {
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"asset": func(name string) string { return "/ui/static/" + name + "?v=" + assetVersion[name] },
	"when":  fmtTime,
}

func mustTemplates() *templates {
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	t := &templates{pages: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return t
}

// view is what the layout renders around a page.
type view struct {
	Title    string
	Nav      string // the page's navigation entry
	SignedIn bool
	Who      string
	Role     string
	Admin    bool
	Flash    []flash
	Data     any
}

// errorData is the body of the error page.
type errorData struct {
	Status int
	Msg    string
}

// render writes page name with status, inside the layout, for a signed-in
// request; queued flash messages are shown (and consumed).
func (h *Handler) render(rq *req, status int, name, title string, data any, extra ...flash) {
	nav := name
	if strings.HasPrefix(name, "policy") { // policyedit, policyfile: under Policies
		nav = "policies"
	}
	v := view{Title: title, Nav: nav, SignedIn: true, Who: display(who(rq.p)), Role: string(rq.p.Role),
		Admin: rq.p.IsAdmin(), Data: data}
	v.Flash = append(h.sessions.takeFlash(rq.sid), extra...)
	h.write(rq.w, rq.r, status, name, "layout", v)
}

// renderFragment writes one named template of page name (an htmx swap).
func (h *Handler) renderFragment(rq *req, name, tmpl string, data any) {
	h.write(rq.w, rq.r, http.StatusOK, name, tmpl, data)
}

// renderError writes the error page for a request without a session.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.write(w, r, status, "error", "layout", view{Title: http.StatusText(status), Nav: "error",
		Data: errorData{Status: status, Msg: msg}})
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, status int, page, tmpl string, data any) {
	t := h.tmpl.pages[page]
	var buf bytes.Buffer
	if t == nil {
		h.log.Error("no such template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, tmpl, data); err != nil {
		h.log.Error("render page", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fmtTime formats a time for tables; the zero time is "never".
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// display makes a string from the network safe to show as plain text:
// control and format characters (which could reorder or hide text) are
// shown as \xNN / \u+NNNN escapes, invalid UTF-8 as U+FFFD. HTML escaping
// is html/template's job; this only keeps what is shown legible.
func display(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteRune('\uFFFD')
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, `\u+%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
