package restapi

import (
	"fmt"
	"net/http"

	"petrel/management/model"
)

// resource describes one collection of account objects that the API serves
// with the common shapes: list (sorted views), get, create, update and
// delete by the {id} path value, and PATCH through updater. T is the stored
// model type, V its JSON view. Endpoints that differ (peer rename, setup key
// create and revoke) are written out and reuse lookup, viewer and putObject.
type resource[T model.Object, V any] struct {
	// all returns the collection inside an account snapshot.
	all func(a *model.Account) map[string]T
	// what names the kind in the 404 for an unknown ID.
	what string
	// find, when set, resolves the {id} path value in place of an ID
	// lookup in all; its error is what is answered.
	find func(r resolver, id string) (T, error)
	// decode checks a create/update body, resolving references with r.
	decode func(r resolver, body []byte) (T, error)
	// plain marks decode and viewer as not using the resolver: create then
	// reads no account snapshot and they get a zero resolver.
	plain bool
	// setID gives an update the ID of the object it replaces.
	setID func(obj T, id string)
	// readOnly lists the members of V an update may repeat unchanged.
	readOnly readOnly
	// viewer returns the function that renders objects for one request
	// (per-request state such as the clock is taken once here).
	viewer func(s *server, r resolver) func(T) V
	// name and id are the keys lists are sorted by.
	name, id func(V) string
	// owner, when set, makes the resource one that users (role user) may
	// reach through scopeSelf routes: it returns the ID of the user who
	// owns obj ("" for none). Their lists hold only their own objects,
	// and another's object is a 403. ownedBy returns a copy of the account
	// whose collection holds only the user's objects, so that their
	// references resolve among their own objects first.
	owner   func(obj T) string
	ownedBy func(a *model.Account, userID string) *model.Account
	// others is the 403 message for someone else's object.
	others string
}

// restricted reports whether the caller sees only their own objects.
func (res *resource[T, V]) restricted(c *call) bool {
	return res.owner != nil && !c.p.IsAdmin()
}

// byRef is a find that resolves the {id} path value as a reference (ID or
// name): 400 when the name is ambiguous, else 404 when nothing matches.
func byRef[T any](resolve func(resolver, string) (T, *resolveError)) func(resolver, string) (T, error) {
	return func(r resolver, id string) (T, error) {
		v, err := resolve(r, id)
		switch {
		case err == nil:
			return v, nil
		case err.ambiguous:
			return v, invalidf("%s", err.msg)
		}
		return v, notFoundf("%s", err.msg)
	}
}

// lookup returns the object the {id} path value names.
func (res *resource[T, V]) lookup(s *server, c *call) (resolver, T, error) {
	r, err := s.resolver(c)
	if err != nil {
		var zero T
		return r, zero, err
	}
	id := c.r.PathValue("id")
	if !res.restricted(c) {
		obj, err := res.find1(r, id)
		return r, obj, err
	}
	obj, err := res.find1(resolver{a: res.ownedBy(r.a, c.p.UserID)}, id)
	if err == nil {
		return r, obj, nil
	}
	if other, oerr := res.find1(r, id); oerr == nil && res.owner(other) != c.p.UserID {
		return r, obj, &apiError{status: http.StatusForbidden, code: codePermission, msg: res.others}
	}
	return r, obj, err
}

// find1 resolves the {id} path value id in r's account.
func (res *resource[T, V]) find1(r resolver, id string) (T, error) {
	if res.find != nil {
		return res.find(r, id)
	}
	obj, ok := res.all(r.a)[id]
	if !ok {
		return obj, notFoundf("%s %q not found", res.what, id)
	}
	return obj, nil
}

func (res *resource[T, V]) list(s *server, c *call) (int, any, error) {
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	items := res.all(r.a)
	out := make([]V, 0, len(items))
	view := res.viewer(s, r)
	for _, obj := range items {
		if res.restricted(c) && res.owner(obj) != c.p.UserID {
			continue
		}
		out = append(out, view(obj))
	}
	sortByName(out, res.name, res.id)
	return http.StatusOK, out, nil
}

func (res *resource[T, V]) get(s *server, c *call) (int, any, error) {
	r, obj, err := res.lookup(s, c)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res.viewer(s, r)(obj), nil
}

// create decodes a POST body and stores it as a new object (201).
func (res *resource[T, V]) create(s *server, c *call) (int, any, error) {
	body, err := readBody(c, mediaJSON)
	if err != nil {
		return 0, nil, err
	}
	var r resolver
	if !res.plain {
		if r, err = s.resolver(c); err != nil {
			return 0, nil, err
		}
	}
	obj, err := res.decode(r, body)
	if err != nil {
		return 0, nil, err
	}
	stored, err := putObject(s, c, obj)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, res.viewer(s, r)(stored), nil
}

// updater returns the PUT and PATCH handlers of the resource.
func (res *resource[T, V]) updater() updater {
	return updater{current: res.current, apply: res.replace}
}

// current returns the GET representation of the object the path names.
func (res *resource[T, V]) current(s *server, c *call) (any, error) {
	r, obj, err := res.lookup(s, c)
	if err != nil {
		return nil, err
	}
	return res.viewer(s, r)(obj), nil
}

// replace handles a PUT body: the object the path names is replaced by the
// decoded body (200). Read-only members of the GET representation may be
// repeated (see readOnly).
func (res *resource[T, V]) replace(s *server, c *call, body []byte) (int, any, error) {
	r, old, err := res.lookup(s, c)
	if err != nil {
		return 0, nil, err
	}
	view := res.viewer(s, r)
	before := view(old)
	ed, err := res.readOnly.strip(body, before)
	if err != nil {
		return 0, nil, err
	}
	obj, err := res.decode(r, ed.body)
	if err != nil {
		return 0, nil, err
	}
	res.setID(obj, old.ObjectID())
	if err := ed.checkDerived(before, view(obj)); err != nil {
		return 0, nil, err
	}
	stored, err := putObject(s, c, obj)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, view(stored), nil
}

func (res *resource[T, V]) delete(s *server, c *call) (int, any, error) {
	_, obj, err := res.lookup(s, c)
	if err != nil {
		return 0, nil, err
	}
	if err := s.api.Delete(c.r.Context(), c.account, obj.ObjectKind(), obj.ObjectID()); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// putObject stores obj through AdminAPI.Put and returns the stored copy.
func putObject[T model.Object](s *server, c *call, obj T) (T, error) {
	stored, err := s.api.Put(c.r.Context(), c.account, obj)
	if err != nil {
		var zero T
		return zero, err
	}
	return as[T](stored)
}

// as converts a stored object returned by AdminAPI.Put to its type.
func as[T model.Object](obj model.Object) (T, error) {
	v, ok := obj.(T)
	if !ok {
		var zero T
		return zero, fmt.Errorf("stored object has type %T, want %T", obj, zero)
	}
	return v, nil
}
