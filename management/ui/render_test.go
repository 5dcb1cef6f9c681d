package ui

import "testing"

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"laptop":                  "laptop",
		"<img src=x>":             "<img src=x>", // HTML escaping is the template's job
		"a\x1b[31mb":              `a\x1b[31mb`,
		"nul\x00":                 `nul\x00`,
		"rtl\u202eevil":           `rtl\u+202Eevil`,
		"zw\u200bsp":              `zw\u+200Bsp`,
		"bad\xffutf8":             "bad\uFFFDutf8",
		"tab\tnewline\n":          `tab\x09newline\x0a`,
		"c1\u0085":                `c1\u+0085`,
		"emoji \U0001F426 fine":   "emoji \U0001F426 fine",
		"tag \U000E0041 (format)": `tag \u+E0041 (format)`,
	} {
		if got := display(in); got != want {
			t.Errorf("display(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "/ui/peers",
		"/ui/groups?x=1":        "/ui/groups?x=1",
		"//evil.example/ui/":    "/ui/peers",
		"https://evil.example/": "/ui/peers",
		"/api/peers":            "/ui/peers",
		"/ui/login?next=/x":     "/ui/peers",
		"/ui/\\evil":            "/ui/peers",
		"javascript:alert(1)":   "/ui/peers",
	} {
		if got := localNext(in); got != want {
			t.Errorf("localNext(%q) = %q, want %q", in, got, want)
		}
	}
}
