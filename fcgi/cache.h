/* cache.h - a FastCGI child's answers to hot reads, kept for a moment.
 *
 * On PostgreSQL every request costs a round trip to the server, which on
 * a small machine is most of its time; on SQLite a large answer (a board
 * of 1,000 tasks) costs its building, a millisecond and more of json-c.
 * The GET routes that poll (those
 * with a prefetch in the route table: the session, a job and its output,
 * the change feed, a board) are the reads a page repeats many times a
 * second across its tabs, and they mostly answer the same. A child keeps
 * the bytes of such an answer, keyed by everything the answer depends on
 * (path, query, scheme, Cookie and If-None-Match headers), and gives them
 * again while nothing has changed:
 *
 *  - every process of this install on this host (the pool's children, the
 *    worker and its jobs, anyonctl) bumps one shared count after each of
 *    its commits (base/commitcount.h); a child whose count moved forgets
 *    everything before its next request, so what any of them committed
 *    is seen by the next request on this host;
 *  - on PostgreSQL, a write committed on another host (its pool, its
 *    worker) reaches every child as a notification (migration 018; the
 *    child LISTENs); the child reads its socket before each request and
 *    forgets everything when one came, milliseconds after the commit;
 *  - on SQLite, a commit by any other connection to the file (a program
 *    that does not count, such as the sqlite3 shell) changes its data
 *    version, which the child reads before each request (db_poll());
 *  - nothing is kept longer than ANYON_READ_CACHE_MS (1 s) nor past its
 *    session's expiry, so a session still in use is touched in time and a
 *    lost notification cannot keep an answer longer than that;
 *  - only 200 and 304 answers that set no cookie; never an error, a 401
 *    after a revocation included.
 *
 * One cache per process; not thread-safe (a child serves one request at
 * a time).
 */
#ifndef ANYON_FCGI_CACHE_H
#define ANYON_FCGI_CACHE_H

#include <stdbool.h>
#include <stddef.h>

struct db;
struct req;

/* In the pool's parent, before the first child: maps the host's count of
 * commits for the children. Harmless to skip (then no child keeps anything). */
void cache_pool_init(void);
/* In a child, on its connection: listens for changes and counts its own
 * commits. Keeps nothing when ANYON_READ_CACHE_MS is 0, without the shared
 * counter, or when the database refuses to listen. */
void cache_child_init(struct db *db);
/* Before each request: reads what the database sent (a connection the
 * server closed is opened again here, on any backend that has a server)
 * and forgets every answer when something changed. */
void cache_before_request(struct db *db);
/* A GET of a cacheable route: answers it from the cache and returns true,
 * or returns false and remembers r's key so its answer can be kept. */
bool cache_serve(struct req *r);
/* r's answer as written (head, body, and a newline when nl): kept when r
 * asked (cache_serve() missed) and the answer may be kept. */
void cache_store(struct req *r, const char *head, size_t head_len, const char *body, size_t body_len, bool nl);
/* Frees r's key (http_reset()). */
void cache_req_done(struct req *r);
/* As the child ends: logs how many requests the cache answered and how
 * many answers it kept (tests read it), and wipes what it holds. */
void cache_child_done(void);

#endif
