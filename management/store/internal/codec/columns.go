package codec

import "petrel/management/model"

// Columns lists the kind's columns after account_id, in the order Values and
// Targets use: id first, data last.
func Columns(k model.Kind) []string {
	switch k {
	case model.KindPeer:
		return []string{"id", "public_key", "ip", "dns_label", "data"}
	case model.KindGroup:
		return []string{"id", "name", "data"}
	case model.KindSetupKey:
		return []string{"id", "key_hash", "reusable", "usage_limit", "used_times", "expires_at", "revoked", "last_used", "data"}
	case model.KindAdminToken, model.KindAccessToken:
		return []string{"id", "token_hash", "data"}
	case model.KindUser:
		return []string{"id", "idp_key", "data"}
	}
	return []string{"id", "data"}
}

// Values returns the row's column values in Columns order.
func (r *Row) Values() []any {
	v := r.Targets()
	for i, p := range v {
		switch p := p.(type) {
		case *string:
			v[i] = *p
		case *[]byte:
			v[i] = *p
		case *bool:
			v[i] = *p
		case *int64:
			v[i] = *p
		case **int64:
			v[i] = *p
		}
	}
	v[len(v)-1] = string(r.Data) // JSON text, not a blob
	return v
}

// Targets returns pointers to the row's fields in Columns order, for Scan.
func (r *Row) Targets() []any {
	switch r.Kind {
	case model.KindPeer:
		return []any{&r.ID, &r.PublicKey, &r.IP, &r.DNSLabel, &r.Data}
	case model.KindGroup:
		return []any{&r.ID, &r.Name, &r.Data}
	case model.KindSetupKey:
		return []any{&r.ID, &r.Hash, &r.Reusable, &r.UsageLimit, &r.UsedTimes, &r.ExpiresAt, &r.Revoked, &r.LastUsed, &r.Data}
	case model.KindAdminToken, model.KindAccessToken:
		return []any{&r.ID, &r.Hash, &r.Data}
	case model.KindUser:
		return []any{&r.ID, &r.IdPKey, &r.Data}
	}
	return []any{&r.ID, &r.Data}
}

// ConflictField names, for error messages, the field a unique constraint on
// table.column protects.
func ConflictField(table, column string) string {
	switch table + "." + column {
	case "peers.public_key":
		return "peer public key"
	case "peers.ip":
		return "peer ip"
	case "peers.dns_label":
		return "peer dns label"
	case "groups.name":
		return "group name"
	case "setup_keys.key_hash":
		return "setup key hash"
	case "admin_tokens.token_hash":
		return "admin token hash"
	case "users.idp_key":
		return "user identity"
	case "access_tokens.token_hash":
		return "access token hash"
	case "accounts.id":
		return "account id"
	}
	return table + " " + column
}
