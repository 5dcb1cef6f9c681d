-- Upgrade fixture: schema version 7 (SQLite). The data set of
-- storetest.UpgradeAccountsAt(7) and storetest.UpgradeEvents(7) as
-- petrel-server at schema 7 stored it, loaded after migrations 0001..0007. Frozen: never edit a released version's
-- fixture; a new migration comes with a fixture of its own version.

INSERT INTO accounts (id, network, created_at, settings, version) VALUES
    ('acme', '100.90.0.0/16', 1714557600123456789, '{"dns_domain":"acme.internal","login_expiration":2592000000000000}', 7);
INSERT INTO accounts (id, network, created_at, settings, version) VALUES
    ('quiet', '100.91.0.0/16', 1735689600000000000, '{"dns_domain":"petrel.internal","login_expiration":0}', 0);

INSERT INTO "peers" (account_id, id, public_key, ip, dns_label, data) VALUES
    ('acme', 'p-ci', 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=', '100.90.1.7', 'ci-runner-7', '{"name":"ci-runner-7","meta":{"hostname":"ci-runner-7","os":"linux","kernel":"","version":"0.3.1","netstack_mode":false},"setup_key_id":"k-ci","ephemeral":true,"created_at":"2024-06-30T12:00:00Z","last_seen":"0001-01-01T00:00:00Z"}'),
    ('acme', 'p-gw', 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=', '100.90.0.1', 'gw-1', '{"name":"gw-1","meta":{"hostname":"gw-1.acme.lan","os":"linux","kernel":"6.8.0-45-generic","version":"0.3.1","netstack_mode":false},"setup_key_id":"k-ci","ephemeral":false,"created_at":"2024-05-01T10:05:00.5Z","last_seen":"2024-06-30T23:59:59.999999999Z"}'),
    ('acme', 'p-laptop', 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=', '100.90.0.2', 'anas-macbook', '{"name":"Ana''s MacBook","meta":{"hostname":"anas-macbook","os":"darwin","kernel":"23.5.0","version":"0.3.0","netstack_mode":true},"setup_key_id":"k-once","ephemeral":false,"created_at":"2024-05-02T08:00:00Z","last_seen":"2024-06-29T18:00:00Z"}'),
    ('acme', 'p-phone', 'q2ZrX0cHhJ1k3mV2Z4dQ0pS8uYtW6eR5nB7vC9xA1sE=', '100.90.0.3', 'ana-phone', '{"name":"ana-phone","meta":{"hostname":"ana-phone","os":"android","kernel":"","version":"0.4.0","netstack_mode":true},"setup_key_id":"","ephemeral":false,"created_at":"2024-07-01T09:00:00Z","last_seen":"2024-07-02T10:00:00.25Z","user_id":"u-ana","last_login":"2024-07-01T08:59:30.000000007Z"}');

INSERT INTO "groups" (account_id, id, name, data) VALUES
    ('acme', 'g-all', 'All', '{"peer_ids":["p-gw","p-laptop","p-ci"]}'),
    ('acme', 'g-ci', 'ci', '{"peer_ids":["p-ci"]}'),
    ('acme', 'g-empty', 'nobody yet', '{"peer_ids":[]}'),
    ('acme', 'g-eng', 'engineering', '{"peer_ids":["p-phone"],"idp_managed":true}'),
    ('acme', 'g-servers', 'servers', '{"peer_ids":["p-gw"]}');

INSERT INTO "setup_keys" (account_id, id, key_hash, reusable, usage_limit, used_times, expires_at, revoked, last_used, data) VALUES
    ('acme', 'k-ci', X'e3128f6b0949bdadf0fc6a05f4cb277c8b8b047764d01a8470330db4ffc9e870', 1, 0, 42, NULL, 0, 1719748800000000000, '{"name":"ci runners","key_prefix":"7D1C","auto_groups":["g-ci"],"ephemeral":true,"created_at":"2024-05-01T10:01:00Z"}'),
    ('acme', 'k-expired', X'e5c540f6ae678d32f9fcb659d3191a1f5634263e553a9a2b2f5c9ec4911a9314', 1, 5, 2, 1717200000000000000, 0, NULL, '{"name":"trial","key_prefix":"0123","auto_groups":null,"ephemeral":false,"created_at":"2024-05-04T00:00:00Z"}'),
    ('acme', 'k-fresh', X'857c3e835288a61c542c033fc53ca9de2f6ed9f43ebe42b5057185d79199bf38', 1, 10, 0, 4070908800000000000, 0, NULL, '{"name":"next laptops","key_prefix":"A0B1","auto_groups":[],"ephemeral":false,"created_at":"2024-06-01T00:00:00Z"}'),
    ('acme', 'k-once', X'2ecd47f3328f2eb2228a3d8d49c6b6a9ea4e88852696eb9bfe8e09438a6b4d94', 0, 1, 1, NULL, 0, 1714636800000000000, '{"name":"ana","key_prefix":"F00D","auto_groups":null,"ephemeral":false,"created_at":"2024-05-02T07:55:00Z"}'),
    ('acme', 'k-revoked', X'aaab57aa8a20536d33ad72aec957616653bfee2fa8f434f7d1b9ee8e02ffd75c', 1, 0, 0, NULL, 1, NULL, '{"name":"leaked","key_prefix":"DEAD","auto_groups":null,"ephemeral":false,"created_at":"2024-05-03T00:00:00Z"}');

INSERT INTO "policies" (account_id, id, data) VALUES
    ('acme', 'pol-default', '{"name":"Default","description":"All to All","enabled":true,"rules":[{"id":"r-default","name":"default","sources":["g-all"],"destinations":["g-all"],"protocol":"all","ports":null,"bidirectional":true,"action":"accept"}]}'),
    ('acme', 'pol-off', '{"name":"disabled","description":"","enabled":false,"rules":[]}'),
    ('acme', 'pol-web', '{"name":"web","description":"","enabled":true,"rules":[{"id":"r-https","name":"https","sources":["g-all"],"destinations":["g-servers"],"protocol":"tcp","ports":[{"start":443,"end":443},{"start":8000,"end":8999}],"bidirectional":false,"action":"accept"},{"id":"r-ping","name":"","sources":["g-ci"],"destinations":["g-servers"],"protocol":"icmp","ports":null,"bidirectional":false,"action":"drop"}]}');

INSERT INTO "routes" (account_id, id, data) VALUES
    ('acme', 'rt-exit', '{"description":"exit","network_id":"exit","network":"0.0.0.0/0","peer":"","peer_groups":["g-servers"],"groups":["g-ci"],"metric":9999,"masquerade":true,"enabled":true,"auto_apply":true}'),
    ('acme', 'rt-office', '{"description":"office LAN","network_id":"office","network":"10.20.0.0/16","peer":"p-gw","peer_groups":null,"groups":["g-all"],"metric":100,"masquerade":true,"enabled":true,"auto_apply":false}'),
    ('acme', 'rt-v6', '{"description":"","network_id":"lab6","network":"2001:db8:20::/48","peer":"p-gw","peer_groups":null,"groups":["g-servers"],"metric":0,"masquerade":false,"enabled":false,"auto_apply":false}');

INSERT INTO "nameserver_groups" (account_id, id, data) VALUES
    ('acme', 'ns-corp', '{"name":"corp","description":"office resolvers","nameservers":["10.20.0.53:53","[2001:db8:20::53]:5353"],"domains":["corp.acme.example","20.10.in-addr.arpa"],"primary":false,"groups":["g-all"],"enabled":true}'),
    ('acme', 'ns-global', '{"name":"global","description":"","nameservers":["9.9.9.9:53"],"domains":null,"primary":true,"groups":["g-ci"],"enabled":false}');

INSERT INTO "dns_zones" (account_id, id, data) VALUES
    ('acme', 'z-svc', '{"domain":"svc.acme.example","records":[{"name":"@","type":"A","value":"10.20.0.10","ttl":300},{"name":"api","type":"AAAA","value":"2001:db8:20::10","ttl":60},{"name":"www","type":"CNAME","value":"svc.acme.example.","ttl":3600},{"name":"@","type":"TXT","value":"v=spf1 -all \"quoted\" ünïcode","ttl":300}]}');

INSERT INTO "admin_tokens" (account_id, id, token_hash, data) VALUES
    ('acme', 't-admin', X'2a1f87f3d40850a900bef6d13310543247713284bf32a8d230920f9b487d4ef8', '{"name":"bootstrap","created_at":"2024-05-01T10:00:01Z"}'),
    ('acme', 't-ci', X'965b49d40c92734e40c190cba5546c0ebf083aed5cef7622c334c166a6f0c14e', '{"name":"terraform","created_at":"2024-05-20T09:30:00.000000001Z"}');

INSERT INTO users (account_id, id, idp_key, data) VALUES
    ('acme', 'u-ana', 'https://idp.acme.example 248289761001', '{"email":"ana@acme.example","name":"Ana Lima","role":"owner","issuer":"https://idp.acme.example","subject":"248289761001","groups":["g-eng"],"blocked":false,"created_at":"2024-07-01T08:59:00Z","last_login":"2024-07-01T08:59:30.000000007Z"}'),
    ('acme', 'u-bob', 'https://idp.acme.example bob|42', '{"email":"bob@acme.example","name":"Bob","role":"user","issuer":"https://idp.acme.example","subject":"bob|42","groups":null,"blocked":true,"created_at":"2024-07-03T00:00:00Z","last_login":"0001-01-01T00:00:00Z"}');

INSERT INTO access_tokens (account_id, id, token_hash, data) VALUES
    ('acme', 'pat-ana', X'9402f3f8c32454c9d91b613b041b533033b30d29b463fee5685401b6d2a16659', '{"name":"laptop cli","user_id":"u-ana","prefix":"ptr_7Hk2","created_at":"2024-07-01T09:10:00Z","expires_at":"2025-07-01T09:10:00Z"}'),
    ('acme', 'pat-ci', X'c37d5de3f50ec7dbe53d45cd7ee458d9c7d95bda4d8e3bf4a32c67a1b340b995', '{"name":"ci","user_id":"u-ana","prefix":"ptr_Q9za","created_at":"2024-07-01T09:11:00Z","expires_at":"0001-01-01T00:00:00Z"}');

-- Oldest first; the database assigns seq 1, 2, 3.
INSERT INTO events (account_id, at, actor, action, target_kind, target_id, data) VALUES
    ('acme', 1719824370000000007, 'system', 'user.create', 'user', 'u-ana', '{"detail":"Ana \"the owner\" Lima"}');
INSERT INTO events (account_id, at, actor, action, target_kind, target_id, data) VALUES
    ('acme', 1719824400000000000, 'user:u-ana', 'peer.create', 'peer', 'p-phone', '{"actor_email":"ana@acme.example","detail":"ana-phone"}');
INSERT INTO events (account_id, at, actor, action, target_kind, target_id, data) VALUES
    ('acme', 1719825000000000000, 'user:u-ana', 'access_token.create', 'access_token', 'pat-ana', '{"actor_email":"ana@acme.example","detail":"laptop cli"}');

INSERT INTO server_key (id, private_key) VALUES (1, 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=');

INSERT INTO peer_seen (peer_id, seen_at) VALUES ('p-gw', 1719792000000000000);
INSERT INTO job_runs (job, slot, instance, ran_at) VALUES ('janitor', 28600000, '3f9a0c1d2e4b5a67', 1719792000000000000);
