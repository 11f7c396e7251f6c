/* cache.c - a FastCGI child's answers to hot reads (see cache.h). */
#include "autoconfig.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>
#include <openssl/crypto.h>

#include "base/commitcount.h"
#include "base/config.h"
#include "base/log.h"
#include "base/util.h"
#include "db/db.h"
#include "fcgi/api.h"
#include "fcgi/cache.h"
#include "fcgi/conns.h"

#define CACHE_ENTRIES 64
#define CACHE_KEY_MAX 4096           /* a longer key (a huge Cookie header) is not kept */
#define CACHE_ANSWER_MAX (512 << 10) /* a board of 1,000 tasks is ~120 KB */
#define CACHE_BYTES_MAX (8 << 20)    /* all of one child's answers */

struct entry {
	char *key;                   /* owned */
	size_t key_len;
	char *answer;                /* owned: head and body as written */
	size_t answer_len;
	int status;
	int64_t until_ms;            /* monotonic: kept until then */
	int64_t session_expires;     /* wall clock seconds; 0: none */
	uint64_t used;               /* for eviction: the least recently used goes */
};

/* Commits on this host (base/commitcount.h), mapped before fork(). */
static _Atomic uint64_t *commits;
static struct {
	bool on;
	bool down;                   /* the database is away: nothing is kept meanwhile */
	uint64_t commits_seen;       /* *commits when the entries were last valid */
	uint64_t tick;
	size_t bytes;
	struct entry e[CACHE_ENTRIES];
	unsigned long hits, stored;
} c;

void cache_pool_init(void)
{
	commits = commit_count_map(g_config.data_dir, true);
	if (!commits)
		log_warn("cannot map %s/commit-count: the children keep no answers", g_config.data_dir);
}

void cache_child_init(struct db *db)
{
	/* Counting commits costs nothing and keeps the other children right
	 * even where this one keeps nothing itself. */
	if (commits)
		db_share_commits(db, g_config.data_dir, true);
	if (!commits || g_config.read_cache_ms <= 0)
		return;
	if (db_watch_changes(db)) {
		log_warn("the database cannot report changes: this child keeps no answers");
		return;
	}
	c.on = true;
	c.commits_seen = atomic_load(commits);
}

/* Keys hold Cookie headers (session tokens) and answers CSRF tokens:
 * wiped before they are freed. */
static void wipe_free(char *p, size_t len)
{
	if (p)
		OPENSSL_cleanse(p, len);
	free(p);
}

static void drop(struct entry *e)
{
	c.bytes -= e->answer_len;
	wipe_free(e->key, e->key_len);
	wipe_free(e->answer, e->answer_len);
	memset(e, 0, sizeof(*e));
}

static void forget_all(void)
{
	for (int i = 0; i < CACHE_ENTRIES; i++)
		if (c.e[i].key)
			drop(&c.e[i]);
}

void cache_before_request(struct db *db)
{
	int got = db_poll(db);
	uint64_t now;

	if (!c.on)
		return;
	now = atomic_load(commits);
	if ((got & DB_POLL_CHANGED) || now != c.commits_seen) {
		forget_all();
		c.commits_seen = now;
	}
	/* While the server is away its notifications are lost: keep nothing
	 * until a connection listens again. */
	c.down = (got & DB_POLL_DOWN) != 0;
}

static bool append(char *key, size_t *n, const char *s)
{
	size_t len = strlen(s ? s : "");

	if (*n + len + 1 > CACHE_KEY_MAX)
		return false;
	memcpy(key + *n, s ? s : "", len);
	*n += len;
	key[(*n)++] = '\0';
	return true;
}

/* Everything a cacheable GET's answer depends on besides the database:
 * the route (path and query), the scheme (which cookie is read), and the
 * Cookie and If-None-Match headers; the Host was checked before. */
static char *make_key(struct req *r, size_t *len)
{
	char buf[CACHE_KEY_MAX], *key = NULL;
	size_t n = 0;

	if (append(buf, &n, r->path) && append(buf, &n, r->query) && append(buf, &n, r->https ? "s" : "") &&
	    append(buf, &n, http_param(r, "HTTP_COOKIE")) && append(buf, &n, http_param(r, "HTTP_IF_NONE_MATCH"))) {
		key = malloc(n);
		if (key) {
			memcpy(key, buf, n);
			*len = n;
		}
	}
	OPENSSL_cleanse(buf, n);
	return key;
}

static struct entry *find(const char *key, size_t len)
{
	for (int i = 0; i < CACHE_ENTRIES; i++)
		if (c.e[i].key && c.e[i].key_len == len && memcmp(c.e[i].key, key, len) == 0)
			return &c.e[i];
	return NULL;
}

bool cache_serve(struct req *r)
{
	struct entry *e;
	size_t len;
	char *key;

	if (!c.on || c.down || r->route->prefetch == PF_NONE || strcmp(r->method, "GET"))
		return false;
	key = make_key(r, &len);
	if (!key)
		return false;
	e = find(key, len);
	if (e && (mono_ms() >= e->until_ms || (e->session_expires && now_s() >= e->session_expires))) {
		drop(e);
		e = NULL;
	}
	if (!e) {
		r->cache_key = key;   /* owned by r until cache_req_done() */
		r->cache_key_len = len;
		return false;
	}
	wipe_free(key, len);
	e->used = ++c.tick;
	conns_put(r->fx, &(struct iovec){ e->answer, e->answer_len }, 1);
	r->responded = true;
	r->status = e->status;
	c.hits++;
	return true;
}

void cache_store(struct req *r, const char *head, size_t head_len, const char *body, size_t body_len, bool nl)
{
	struct entry *slot = NULL;
	char *answer;
	size_t len = head_len + body_len + (nl ? 1 : 0);

	if (!r->cache_key || (r->status != 200 && r->status != 304) || r->set_cookie || r->clear_cookie ||
	    len > CACHE_ANSWER_MAX)
		return;
	/* Room: the least recently used answers go, as many as needed. */
	for (;;) {
		struct entry *old = NULL;

		slot = NULL;
		for (int i = 0; i < CACHE_ENTRIES; i++) {
			if (!c.e[i].key)
				slot = slot ? slot : &c.e[i];
			else if (!old || c.e[i].used < old->used)
				old = &c.e[i];
		}
		if (slot && c.bytes + len <= CACHE_BYTES_MAX)
			break;
		if (!old)
			return;
		drop(old);
	}
	answer = malloc(len);
	if (!answer)
		return;
	memcpy(answer, head, head_len);
	memcpy(answer + head_len, body, body_len);
	if (nl)
		answer[len - 1] = '\n';
	slot->key = r->cache_key;
	slot->key_len = r->cache_key_len;
	r->cache_key = NULL;
	slot->answer = answer;
	slot->answer_len = len;
	slot->status = r->status;
	slot->until_ms = mono_ms() + g_config.read_cache_ms;
	slot->session_expires = r->has_session ? r->session.expires_at : 0;
	slot->used = ++c.tick;
	c.bytes += len;
	c.stored++;
}

void cache_req_done(struct req *r)
{
	wipe_free(r->cache_key, r->cache_key_len);
	r->cache_key = NULL;
}

void cache_child_done(void)
{
	if (c.on)
		log_info("answer cache: %lu request(s) answered from it, %lu answer(s) kept", c.hits, c.stored);
	forget_all();
}
