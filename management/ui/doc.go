// Package ui is the web dashboard of petrel-server: server-rendered HTML
// pages under /ui/ on the server's one port, over the same account service
// the REST API uses (management.AdminAPI) plus its peer-status
// subscription (WatchPeers) for live updates. See docs/dashboard.md.
//
// It lives beside management/restapi because it is another face of the
// same service, built only on its exported API; package server mounts both
// (mux.Handle("/ui/", ui.New(svc, opts))). Nothing else imports it.
//
// Pages are html/template files and static assets embedded with embed.FS;
// htmx and its server-sent-events extension are vendored, pinned releases
// (static/NOTICE.md). No page carries an inline script or style, so the
// Content-Security-Policy allows scripts and styles from 'self' only.
//
// Sign-in takes an admin token or a personal access token once and opens a
// server-side session (session.go); the browser holds only a random
// session ID in an HttpOnly cookie. Every request re-checks the token
// behind the session against the account, so a revoked token or a blocked
// user loses the session at once. State-changing requests pass
// http.CrossOriginProtection.
//
// Goroutines: ServeHTTP runs on net/http's goroutines; the session store
// is guarded by its own mutex. Each open event stream (/ui/events/stream)
// holds one WatchPeers subscription, ended with the request. The handler
// starts no goroutine of its own and needs no Stop.
package ui
