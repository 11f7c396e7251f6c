/* devflow.c - GitHub's device flow (see devflow.h). */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "base/config.h"
#include "base/crypto.h"
#include "base/json.h"
#include "base/keyring.h"
#include "base/log.h"
#include "base/util.h"
#include "services/audit.h"
#include "services/devflow.h"

#define FLOW_WINDOW_S 600
#define FLOWS_PER_SESSION 5       /* device flows a session may start per window */
#define FLOWS_PER_ADDRESS 30      /* ... and an address */
/* Times are whole seconds: one more second keeps every poll at least a
 * full interval after the previous one, as GitHub demands. */
#define POLL_MARGIN_S 1

/* GitHub's pending and final answers to a poll, as a table. */
static const struct {
	const char *error;
	const char *status;       /* NULL: still pending */
	const char *message;
} poll_errors[] = {
	{ "authorization_pending", NULL, "" },
	{ "slow_down", NULL, "" },
	{ "expired_token", "expired", "The code expired before it was entered. Start again." },
	{ "access_denied", "denied", "The sign-in was cancelled on GitHub." },
	{ "incorrect_device_code", "error", "GitHub does not know this code any more. Start again." },
	{ "device_flow_disabled", "error", "This server's GitHub app does not have the device flow enabled." },
	{ "incorrect_client_credentials", "error", "This server's GitHub client id is wrong." },
	{ "unsupported_grant_type", "error", "GitHub refused the request (unsupported grant type)." },
};

/* The sealed device code is bound to its flow and session. */
static int flow_aad(char *buf, size_t len, const char *flow_id, int64_t session_id)
{
	return snprintf(buf, len, "anyon:v1:flow:%s:%lld", flow_id, (long long)session_id);
}

/* Fills f from GitHub's answer to a device code request, the device code
 * sealed. DEVFLOW_OK, DEVFLOW_REFUSED or DEVFLOW_GITHUB (out), DEVFLOW_ERROR. */
static enum devflow_rc flow_from_answer(struct secret_store *st, const struct gh_response *g, int64_t now,
					struct db_flow *f, struct devflow_result *out)
{
	const char *device_code, *user_code, *uri, *err, *desc = NULL;
	unsigned char rnd[DB_FLOW_ID_HEX / 2];
	int64_t expires_in, interval;
	const struct key *k;
	char ad[128];

	if (json_get_str(g->json, "error", &err) == 0) {
		json_get_str(g->json, "error_description", &desc);
		snprintf(out->message, sizeof(out->message), "GitHub refused to start sign-in: %.64s%s%.160s",
			 err, desc ? ": " : "", desc ? desc : "");
		return DEVFLOW_REFUSED;
	}
	if (g->status != 200 || json_get_str(g->json, "device_code", &device_code) ||
	    json_get_str(g->json, "user_code", &user_code) ||
	    json_get_str(g->json, "verification_uri", &uri) ||
	    json_get_i64(g->json, "expires_in", &expires_in) || json_get_i64(g->json, "interval", &interval) ||
	    strlen(device_code) == 0 || strlen(device_code) > DB_FLOW_CODE_MAX ||
	    !gh_word_ok(user_code, sizeof(f->user_code) - 1, "-") || !gh_url_ok(uri) ||
	    expires_in < 1 || expires_in > 7200 || interval < 0 || interval > 600) {
		out->gh = gh_classify(g, "device code request");
		return DEVFLOW_GITHUB;
	}
	if (interval < 1)
		interval = 5;
	k = keyring_active(st->kr);
	if (!k || rand_bytes(rnd, sizeof(rnd)))
		return DEVFLOW_ERROR;
	hex_encode(rnd, sizeof(rnd), f->id);
	str_copy(f->key_id, sizeof(f->key_id), k->id);
	f->code_len = strlen(device_code);
	flow_aad(ad, sizeof(ad), f->id, f->session_id);
	if (aead_seal(k->bytes, ad, strlen(ad), device_code, f->code_len, f->nonce, f->code_ct, f->tag))
		return DEVFLOW_ERROR;
	str_copy(f->user_code, sizeof(f->user_code), user_code);
	str_copy(f->verification_uri, sizeof(f->verification_uri), uri);
	f->interval_s = interval;
	f->created_at = now;
	f->expires_at = now + expires_in;
	f->next_poll_at = now + interval + POLL_MARGIN_S;   /* one interval before the first poll too */
	str_copy(f->status, sizeof(f->status), "pending");
	out->expires_in = expires_in;
	return DEVFLOW_OK;
}

enum devflow_rc devflow_start(struct secret_store *st, int64_t session_id, int64_t user_id,
			      const char *remote_addr, int64_t deadline_ms, struct devflow_result *out)
{
	int64_t by_session = 0, by_addr = 0, now = now_s();
	struct db_flow *f = &out->flow;
	struct gh_response g;
	enum devflow_rc rc;

	memset(out, 0, sizeof(*out));
	/* A soft cap, read then written without a lock on either engine:
	 * concurrent starts may pass it by at most the pool's size (and nginx
	 * limits /api/auth/ per address as well). */
	if (db_flow_count_since(st->db, session_id, remote_addr, now - FLOW_WINDOW_S, &by_session, &by_addr))
		return DEVFLOW_ERROR;
	if (by_session >= FLOWS_PER_SESSION || by_addr >= FLOWS_PER_ADDRESS) {
		bool seen = false;

		/* One audit row per window and session, not one per refusal:
		 * a loop of refused starts must not grow the audit table. */
		if (db_audit_seen(st->db, session_id, "github.device_start", "denied", NULL,
				  now - FLOW_WINDOW_S, &seen) || !seen)
			audit_event(st->db, user_id, session_id, "github.device_start", "denied", "rate limited");
		return DEVFLOW_RATE_LIMITED;
	}
	if (gh_device_code(g_config.org_entries ? DEVFLOW_SCOPES DEVFLOW_SCOPE_ORG : DEVFLOW_SCOPES, deadline_ms,
			   &g) || gh_unavailable(&g)) {
		out->gh = gh_classify(&g, "device code request");
		gh_response_release(&g);
		return DEVFLOW_GITHUB;
	}
	f->session_id = session_id;
	str_copy(f->remote_addr, sizeof(f->remote_addr), remote_addr);
	rc = flow_from_answer(st, &g, now, f, out);
	gh_response_release(&g);   /* wipes the device code */
	if (rc == DEVFLOW_OK && db_flow_create(st->db, f))
		rc = DEVFLOW_ERROR;
	if (rc == DEVFLOW_OK)
		audit_event(st->db, user_id, session_id, "github.device_start", "ok", "flow=%.8s", f->id);
	return rc;
}

/* Ends the flow with status and message, in the row and in f. */
static enum devflow_rc end_flow(struct db *db, struct db_flow *f, const char *status, const char *message)
{
	str_copy(f->status, sizeof(f->status), status);
	str_copy(f->message, sizeof(f->message), message);
	if (db_flow_update(db, f->id, status, f->interval_s, f->next_poll_at, message, f->user_id))
		return DEVFLOW_ERROR;
	return DEVFLOW_OK;
}

/* GitHub's "error" answer to a poll: still pending (slow_down raising the
 * interval as GitHub says), or the end of the flow. */
static enum devflow_rc poll_error(struct db *db, struct db_flow *f, const struct gh_response *g,
				  const char *err, int64_t now, struct devflow_result *out)
{
	int64_t iv;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(poll_errors) && strcmp(poll_errors[i].error, err); i++)
		;
	if (i == ARRAY_SIZE(poll_errors)) {
		log_warn("github sign-in: unknown poll error '%.64s'", err);
		return end_flow(db, f, "error", "GitHub refused the sign-in. Start again.");
	}
	if (poll_errors[i].status)
		return end_flow(db, f, poll_errors[i].status, poll_errors[i].message);
	if (strcmp(err, "slow_down") == 0) {
		/* GitHub says the new interval; else it is 5 s more. */
		if (json_get_i64(g->json, "interval", &iv) || iv <= f->interval_s || iv > 600)
			iv = f->interval_s + 5;
		f->interval_s = iv;
		f->next_poll_at = now + iv + POLL_MARGIN_S;
		if (db_flow_update(db, f->id, "pending", f->interval_s, f->next_poll_at, "", 0))
			return DEVFLOW_ERROR;
	}
	out->retry_after = f->next_poll_at - now;
	return DEVFLOW_OK;
}

/* Opens the flow's sealed device code into code (DB_FLOW_CODE_MAX + 1). */
static int open_code(struct secret_store *st, const struct db_flow *f, unsigned char *code)
{
	const struct key *k = keyring_find_fresh(st->kr, f->key_id);
	char ad[128];

	flow_aad(ad, sizeof(ad), f->id, f->session_id);
	if (!k || f->code_len > DB_FLOW_CODE_MAX ||
	    aead_open(k->bytes, ad, strlen(ad), f->nonce, f->code_ct, f->code_len, f->tag, code))
		return -1;
	code[f->code_len] = '\0';
	return 0;
}

enum devflow_rc devflow_poll(struct secret_store *st, const char *id, const struct signin_session *s,
			     int64_t deadline_ms, struct devflow_result *out)
{
	unsigned char code[DB_FLOW_CODE_MAX + 1];
	struct db_flow *f = &out->flow;
	int64_t now = now_s();
	struct gh_response g;
	enum devflow_rc rc;
	const char *err;
	char msg[256];
	int drc;

	memset(out, 0, sizeof(*out));
	drc = devflow_claim_poll(st->db, id, s->id, now, POLL_MARGIN_S, f);
	if (drc == DB_NOTFOUND)
		return DEVFLOW_NOT_FOUND;   /* another session's flow looks exactly like none */
	if (drc == DB_ERROR)
		return DEVFLOW_ERROR;
	if (drc == DB_CONFLICT) {
		/* Over, or too early: answered from the row, GitHub not asked. */
		out->retry_after = strcmp(f->status, "pending") ? 0 : f->next_poll_at - now;
		return DEVFLOW_OK;
	}
	if (now >= f->expires_at)
		return end_flow(st->db, f, "expired", "The code expired before it was entered. Start again.");
	if (open_code(st, f, code))
		return end_flow(st->db, f, "error", "The sign-in state cannot be read. Start again.");
	drc = gh_poll_token((const char *)code, deadline_ms, &g);
	OPENSSL_cleanse(code, sizeof(code));
	if (drc || gh_unavailable(&g) || !g.json) {
		out->gh = gh_classify(&g, "token poll");
		gh_response_release(&g);
		return DEVFLOW_GITHUB;
	}
	if (json_get_str(g.json, "error", &err) == 0) {
		rc = poll_error(st->db, f, &g, err, now, out);
		gh_response_release(&g);
		return rc;
	}
	switch (signin_github(st, f, s, g.json, deadline_ms, &out->user, msg, sizeof(msg))) {
	case SIGNIN_OK:
		rc = DEVFLOW_OK;
		break;
	case SIGNIN_DENIED:
		rc = end_flow(st->db, f, "denied", msg);
		break;
	default:
		rc = end_flow(st->db, f, "error", msg);
		break;
	}
	gh_response_release(&g);   /* wipes the tokens */
	return rc;
}

int devflow_claim_poll(struct db *db, const char *id, int64_t session_id, int64_t now,
		       int64_t margin_s, struct db_flow *out)
{
	int rc;

	/* Read, decide, write in one transaction with the row locked (SQLite:
	 * BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE), so two polls of one flow
	 * arriving at two processes never both reach GitHub. */
	if (db_begin_write(db))
		return DB_ERROR;
	rc = db_flow_get_locked(db, id, session_id, out);
	if (rc == DB_OK && (strcmp(out->status, "pending") || now < out->next_poll_at))
		rc = DB_CONFLICT;
	if (rc != DB_OK) {
		db_rollback(db);
		return rc;
	}
	if (db_flow_set_next_poll(db, id, now + out->interval_s + margin_s) || db_commit(db)) {
		db_rollback(db);
		return DB_ERROR;
	}
	out->next_poll_at = now + out->interval_s + margin_s;
	return DB_OK;
}
