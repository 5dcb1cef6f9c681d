package ui

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"

	"petrel/internal/policyfile"
)

// The policy-file page (/ui/policies/file): the declarative file of
// `petrel-server apply` (package policyfile), previewed as the plan the
// CLI's --dry-run prints and applied step by step. Apply carries the
// digest of what the preview showed (digest) and refuses when the plan it
// would make now differs: the file, the prune box or the live state
// changed in between.

// maxPolicyForm bounds a submitted policy file (text or upload).
const maxPolicyForm = 2 << 20

// policyFileData is the page: the form and, after a preview or an apply,
// the plan or the file's problems and the steps applied.
type policyFileData struct {
	File     string
	Prune    bool
	Digest   string   // of the plan shown; set when it can be applied
	Problems []string // of the file; nothing was changed
	Stale    bool     // apply refused: the plan differs from the preview
	Plan     *planView
	Steps    []stepView // of an apply
	Applied  string     // summary of a finished apply
}

type planView struct {
	Rows    []changeView
	Kept    []string
	Summary string
}

type changeView struct {
	Symbol, Op, Kind, Name string
	Fields                 []policyfile.FieldDiff
}

type stepView struct {
	Text   string
	Status string // "done", "failed", "not applied"
	Err    string
}

func (h *Handler) policyFile(rq *req) error {
	h.render(rq, http.StatusOK, "policyfile", "Policy file", policyFileData{})
	return nil
}

// currentPolicyFile downloads the live state, read as the signed-in user,
// as a policy file: applied as it is, it changes nothing.
func (h *Handler) currentPolicyFile(rq *req) error {
	ls, err := policyfile.FetchLive(rq.ctx(), newRESTInProcess(h.svc, h.log))
	if err != nil {
		return err
	}
	b, err := policyfile.Export(ls).YAML()
	if err != nil {
		return err
	}
	hd := rq.w.Header()
	hd.Set("Content-Type", "application/yaml; charset=utf-8")
	hd.Set("Content-Disposition", `attachment; filename="petrel-policy.yaml"`)
	_, _ = rq.w.Write(b) // an error here is the browser gone
	return nil
}

// policyFileForm reads the file (an upload wins over the text area; line
// ends normalized to \n), the prune box and the digest of a preview.
func policyFileForm(rq *req) (file string, prune bool, digest string, err error) {
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, maxPolicyForm+64<<10)
	if strings.HasPrefix(rq.r.Header.Get("Content-Type"), "multipart/form-data") {
		err = rq.r.ParseMultipartForm(maxPolicyForm)
	} else {
		err = rq.r.ParseForm()
	}
	if err != nil {
		return "", false, "", badInput("read the form (at most %d bytes): %v", maxPolicyForm, err)
	}
	file = rq.r.PostFormValue("file")
	if f, _, ferr := rq.r.FormFile("upload"); ferr == nil {
		defer f.Close()
		b, rerr := io.ReadAll(io.LimitReader(f, maxPolicyForm+1))
		if rerr != nil {
			return "", false, "", badInput("read the uploaded file: %v", rerr)
		}
		if len(b) > 0 {
			file = string(b)
		}
	}
	if len(file) > maxPolicyForm {
		return "", false, "", badInput("the policy file is larger than %d bytes", maxPolicyForm)
	}
	file = strings.ReplaceAll(file, "\r\n", "\n")
	return file, rq.r.PostFormValue("prune") != "", rq.r.PostFormValue("digest"), nil
}

// planFile parses file and plans it against the live state read as the
// signed-in user. Problems of the file fill d.Problems (err is nil); other
// errors (the live state could not be read) are returned.
func (h *Handler) planFile(rq *req, api policyfile.Client, d *policyFileData) (*policyfile.Plan, error) {
	pf, err := policyfile.Parse([]byte(d.File))
	if err == nil {
		var ls *policyfile.Live
		if ls, err = policyfile.FetchLive(rq.ctx(), api); err != nil {
			return nil, err
		}
		var p *policyfile.Plan
		if p, err = policyfile.MakePlan(pf, ls, d.Prune); err == nil {
			d.Plan = newPlanView(p)
			d.Digest = planDigest(d.File, d.Prune, p)
			return p, nil
		}
	}
	var ps policyfile.Problems
	if !errors.As(err, &ps) {
		return nil, err
	}
	for _, e := range ps {
		d.Problems = append(d.Problems, display(e.Error()))
	}
	return nil, nil
}

func newPlanView(p *policyfile.Plan) *planView {
	v := &planView{Kept: p.Kept(), Summary: p.Summary(false)}
	for _, c := range p.Changes() {
		v.Rows = append(v.Rows, changeView{Symbol: c.Op().Symbol(), Op: c.Op().String(), Kind: c.Kind(), Name: c.Name(), Fields: c.Fields()})
	}
	return v
}

// planDigest identifies the plan shown for file and prune: apply recomputes
// it and refuses when it differs.
func planDigest(file string, prune bool, p *policyfile.Plan) string {
	s := sha256.New()
	for _, part := range []string{"petrel policy file plan v1", file, map[bool]string{true: "prune"}[prune], p.Fingerprint()} {
		_ = binary.Write(s, binary.BigEndian, uint64(len(part)))
		s.Write([]byte(part))
	}
	return hex.EncodeToString(s.Sum(nil))
}

// previewPolicyFile shows the plan of the submitted file; nothing changes.
func (h *Handler) previewPolicyFile(rq *req) error {
	var d policyFileData
	var err error
	if d.File, d.Prune, _, err = policyFileForm(rq); err != nil {
		return err
	}
	if _, err := h.planFile(rq, newRESTInProcess(h.svc, h.log), &d); err != nil {
		return err
	}
	status := http.StatusOK
	if d.Problems != nil {
		status = http.StatusBadRequest
	}
	h.render(rq, status, "policyfile", "Policy file", d)
	return nil
}

// applyPolicyFile applies the plan the preview showed, step by step,
// stopping at the first failure. It refuses, changing nothing, when the
// plan it makes now is not the one whose digest the form carries.
func (h *Handler) applyPolicyFile(rq *req) error {
	var d policyFileData
	var shown string
	var err error
	if d.File, d.Prune, shown, err = policyFileForm(rq); err != nil {
		return err
	}
	api := newRESTInProcess(h.svc, h.log)
	p, err := h.planFile(rq, api, &d)
	switch {
	case err != nil:
		return err
	case p == nil:
		h.render(rq, http.StatusBadRequest, "policyfile", "Policy file", d)
		return nil
	case shown == "" || shown != d.Digest:
		d.Stale = true
		h.render(rq, http.StatusConflict, "policyfile", "Policy file", d, flash{Error: true, Msg: staleMsg(shown)})
		return nil
	}
	changes := p.Changes()
	err = p.Apply(rq.ctx(), api, func(c policyfile.Change) {
		d.Steps = append(d.Steps, stepView{Text: c.Done(), Status: "done"})
	})
	d.Digest = "" // applied: a second click must preview again
	var ae *policyfile.ApplyError
	if errors.As(err, &ae) {
		d.Steps = append(d.Steps, stepView{Text: ae.Changes[ae.Step].String(), Status: "failed", Err: display(ae.Err.Error())})
		for _, c := range changes[ae.Step+1:] {
			d.Steps = append(d.Steps, stepView{Text: c.String(), Status: "not applied"})
		}
		status := http.StatusInternalServerError
		var re *restError
		if errors.As(ae.Err, &re) {
			status = re.status
		}
		h.log.Info("policy file apply stopped", "actor", rq.p.Actor(), "step", ae.Step+1, "of", len(changes), "err", ae.Err)
		h.render(rq, status, "policyfile", "Policy file", d, flash{Error: true,
			Msg: "apply stopped at the failed step below; the steps before it were applied, the rest were not"})
		return nil
	} else if err != nil {
		return err
	}
	d.Applied = p.Summary(true)
	msg := "applied: " + d.Applied
	if len(changes) == 0 {
		msg = "no changes: the live state already is what the file says"
	}
	h.render(rq, http.StatusOK, "policyfile", "Policy file", d, flash{Msg: msg})
	return nil
}

func staleMsg(shown string) string {
	if shown == "" {
		return "nothing was changed: preview the file first, then apply the plan it shows"
	}
	return "nothing was changed: the plan differs from the one previewed (the file, the prune box or the live state changed since). " +
		"Review the new plan below and apply again."
}
