/* conns.c - one pool child's FastCGI connections (see conns.h). */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fastcgi.h>

#include "base/log.h"
#include "base/util.h"
#include "fcgi/conns.h"

#define EVENTS_MAX 64
/* What libfcgi reads at a time: FCGX_Accept_r's reader is 8192 bytes. */
#define FCGI_READ 8192
/* A connection being closed waits this long for nginx to close its end. */
#define CLOSE_LINGER_MS 2000
#define WEB_ADDRS_MAX 16
/* Connections taken from the hand-off pair per wake-up (the rest wake
 * another child, or this one on its next round). */
#define TAKE_MAX 16
/* The epoll data of the hand-off pair's receiving end; the listen socket's
 * is 0, a connection's conn_key(). */
#define HANDOFF_KEY UINT64_MAX
/* A record's content is at most 65,535 bytes (16 bits); conns_put() writes
 * records of this much, a multiple of 8 so no padding is due. */
#define RECORD_MAX 65528
/* iovecs per writev() in conns_put(): a header and at least one piece
 * per record. */
#define PUT_IOV 64

struct conn {
	FCGX_Request fx;        /* the connection is fx.ipcFd; -1: a free slot */
	int64_t idle_since;     /* mono_ms when it was accepted or its last request ended */
	bool closing;           /* our side is shut: reading what is left until nginx closes */
	bool served;            /* it carried a request: nginx knows it as kept */
};

struct loop {
	const struct conns_limits *lim;
	int ep;                 /* epoll: the listen socket (data 0) and each connection */
	int listen_fd;
	struct conn *c;         /* lim->max slots */
	int n;                  /* connections open */
	conns_serve_fn serve;
	void *arg;
	int nweb;               /* FCGI_WEB_SERVER_ADDRS entries; -1: not set, any peer */
	struct in_addr web[WEB_ADDRS_MAX];
	int hand_tx, hand_rx;   /* the pool's hand-off pair, -1 without */
	struct conn *current;   /* the connection whose request is being served */
};

/* The loop conns_run() is in, for conns_hand_off() (called from deep
 * inside a request, with no way to pass it down). */
static struct loop *running;

/* A connection's epoll data: its slot and its descriptor, so an event
 * queued for a connection since closed is told from its slot's new one. */
static uint64_t conn_key(int slot, int fd)
{
	return ((uint64_t)(uint32_t)fd << 32) | (uint32_t)(slot + 1);
}

/* FCGI_WEB_SERVER_ADDRS, the IPv4 addresses libfcgi lets connect over TCP
 * (comma separated); what libfcgi's own accept would have checked. */
static void web_addrs_load(struct loop *l)
{
	const char *v = getenv("FCGI_WEB_SERVER_ADDRS");
	char buf[512], *save = NULL;

	l->nweb = -1;
	if (!v)
		return;
	l->nweb = 0;
	if (!str_copy(buf, sizeof(buf), v)) {
		log_warn("FCGI_WEB_SERVER_ADDRS is too long: no TCP peer is let in");
		return;
	}
	for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (l->nweb == WEB_ADDRS_MAX) {
			log_warn("FCGI_WEB_SERVER_ADDRS: only the first %d addresses are used", WEB_ADDRS_MAX);
			break;
		}
		if (inet_pton(AF_INET, t, &l->web[l->nweb]) == 1)
			l->nweb++;
		else
			log_warn("FCGI_WEB_SERVER_ADDRS: '%s' is not an IPv4 address", t);
	}
}

static bool web_addr_ok(const struct loop *l, const struct sockaddr *sa)
{
	if (l->nweb < 0)
		return true;
	if (sa->sa_family != AF_INET)
		return false;
	for (int i = 0; i < l->nweb; i++)
		if (((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr == l->web[i].s_addr)
			return true;
	return false;
}

/* 1: the connection has bytes to read; 0: nothing yet; -1: the peer
 * closed it (or it failed). */
static int conn_ready(const struct conn *c)
{
	char b;
	ssize_t k = recv(c->fx.ipcFd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	if (k > 0)
		return 1;
	if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	return -1;
}

/* Like conn_ready(), but 2 when the whole request is waiting and nothing
 * after it, within what libfcgi reads at once: its first read takes all of
 * it, so however much of the body the handler reads, nothing of this
 * request is left on the connection afterwards. */
static int conn_peek(const struct conn *c)
{
	unsigned char b[FCGI_READ];
	ssize_t k = recv(c->fx.ipcFd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
	size_t off = 0;
	bool whole = false;

	if (k <= 0)
		return k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
	/* Record headers only: BEGIN_REQUEST, PARAMS..., STDIN..., the empty
	 * STDIN record that ends the request. */
	while (off + FCGI_HEADER_LEN <= (size_t)k && b[off] == FCGI_VERSION_1) {
		unsigned type = b[off + 1];
		size_t len = ((size_t)b[off + 4] << 8) | b[off + 5];

		off += FCGI_HEADER_LEN + len + b[off + 6];
		if (type == FCGI_STDIN && len == 0) {
			whole = off == (size_t)k;
			break;
		}
	}
	/* The copy held the request's cookie and body. */
	explicit_bzero(b, (size_t)k);
	return whole ? 2 : 1;
}

/* The slot is free again; its descriptor is closed already. */
static void conn_forget(struct loop *l, struct conn *c)
{
	FCGX_Free(&c->fx, 0);
	c->fx.ipcFd = -1;
	c->closing = false;
	c->served = false;
	l->n--;
}

/* Closes an idle connection: nothing of a request is unread on it, so a
 * plain close (nginx sees the end and drops it from its cache). */
static void conn_close(struct loop *l, struct conn *c)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fx.ipcFd, NULL);
	close(c->fx.ipcFd);
	conn_forget(l, c);
}

/* Serves the request waiting on c, if there is one, and keeps the
 * connection when nginx asked for it and the request was read to its end. */
static void conn_serve(struct loop *l, struct conn *c)
{
	FCGX_Request *fx = &c->fx;
	const char *len;
	bool keep;
	int ready;

	if (c->closing) {
		/* Read and drop what is left (the unread end of the last
		 * request) until nginx closes its end. */
		char b[4096];
		ssize_t k;

		while ((k = recv(fx->ipcFd, b, sizeof(b), MSG_DONTWAIT)) > 0)
			;
		if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			conn_close(l, c);
		return;
	}
	ready = conn_peek(c);
	if (ready < 0) {
		conn_close(l, c);
		return;
	}
	if (ready == 0)
		return;
	/* FCGX_Accept_r first finishes the previous request, closing the
	 * connection unless it is marked kept. */
	fx->keepConnection = 1;
	if (FCGX_Accept_r(fx) < 0) {
		/* Not a request libfcgi could read: it closed the connection
		 * (and failed to accept another on listen_sock -1). */
		if (fx->ipcFd >= 0) {
			epoll_ctl(l->ep, EPOLL_CTL_DEL, fx->ipcFd, NULL);
			close(fx->ipcFd);
		}
		conn_forget(l, c);
		return;
	}
	/* A request without a body: read the end of its (empty) body now, so
	 * nothing of it is left on the connection for the next request. */
	len = FCGX_GetParam("CONTENT_LENGTH", fx->envp);
	if (!len || !*len || strcmp(len, "0") == 0) {
		int ch = FCGX_GetChar(fx->in);

		if (ch != EOF)
			FCGX_UnGetChar(ch, fx->in);
	}
	c->served = true;
	l->current = c;
	l->serve(fx, l->arg);
	l->current = NULL;
	/* A request that did not arrive whole in one read and whose body was
	 * not read to its end record would leave bytes on the connection that
	 * the next request trips on. The serve function reads away what its
	 * handler left (anyon-fcgi: http_reset()), so this is rare: a body
	 * past what it reads away, or a broken stream. Such a connection is
	 * closed as without keep-alive (below); nginx may have picked it for
	 * another request before it sees that close, and a GET is then
	 * retried, a POST answered 503. */
	keep = fx->keepConnection &&
	       (ready == 2 || (fx->in && fx->in->isClosed && fx->in->FCGI_errno == 0));
	/* libfcgi would close a connection not kept by shutting it and reading
	 * until nginx closes, blocking up to 2 s: here the loop does that
	 * reading between requests. It still closes on a failed stream. */
	fx->keepConnection = 1;
	FCGX_Finish_r(fx);
	if (fx->ipcFd < 0) {
		conn_forget(l, c);
		return;
	}
	c->idle_since = mono_ms();
	if (!keep) {
		shutdown(fx->ipcFd, SHUT_WR);
		c->closing = true;
	}
}

/* A connection to close to make room: one being closed, else the oldest
 * kept one with nothing waiting on it (a fresh one is about to carry the
 * request nginx opened it for); NULL when there is none. */
static struct conn *oldest_idle(struct loop *l)
{
	struct conn *best = NULL;

	for (int i = 0; i < l->lim->max; i++) {
		struct conn *c = &l->c[i];

		if (c->fx.ipcFd >= 0 && c->closing)
			return c;
		if (c->fx.ipcFd >= 0 && c->served && (!best || c->idle_since < best->idle_since) &&
		    conn_ready(c) <= 0)
			best = c;
	}
	return best;
}

/* Gives fd a free slot (the caller made sure there is one) and waits on
 * it. served: nginx keeps it already (one handed over by another child).
 * Closes fd when it cannot be waited on. */
static void conn_add(struct loop *l, int fd, bool served)
{
	struct epoll_event ev;
	struct conn *c;
	int slot;

	for (slot = 0; slot < l->lim->max && l->c[slot].fx.ipcFd >= 0; slot++)
		;
	c = &l->c[slot];
	/* listen_sock -1: libfcgi never accepts by itself on a failed read. */
	FCGX_InitRequest(&c->fx, -1, FCGI_FAIL_ACCEPT_ON_INTR);
	c->fx.ipcFd = fd;
	c->idle_since = mono_ms();
	c->closing = false;
	c->served = served;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.u64 = conn_key(slot, fd);
	if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev)) {
		log_warn("epoll_ctl: %s", strerror(errno));
		close(fd);
		c->fx.ipcFd = -1;
		return;
	}
	l->n++;
}

/* Room for one more connection: true when there is, closing the oldest
 * idle one when the child holds its maximum. */
static bool make_room(struct loop *l)
{
	struct conn *c;

	if (l->n < l->lim->max)
		return true;
	/* Full: make room with the oldest idle one (a child holding its
	 * maximum must not leave new connections unanswered). */
	c = oldest_idle(l);
	if (!c)
		return false;   /* all have requests: serve them first */
	conn_close(l, c);
	return true;
}

static void conn_accept(struct loop *l)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_un un;
	} a;
	socklen_t alen = sizeof(a);
	struct timeval tv;
	int fd;

	if (!make_room(l))
		return;
	memset(&a, 0, sizeof(a));
	fd = accept4(l->listen_fd, &a.sa, &alen, SOCK_CLOEXEC);
	if (fd < 0) {
		/* EAGAIN: another child took it. */
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
			log_warn("accept: %s", strerror(errno));
		return;
	}
	if (a.sa.sa_family == AF_INET || a.sa.sa_family == AF_INET6) {
		int one = 1;

		if (!web_addr_ok(l, &a.sa)) {
			close(fd);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	/* A request arrives whole from nginx; a peer that stops half-way
	 * holds the child at most this long. (A socket option: it goes with
	 * the connection when it is handed over.) */
	tv.tv_sec = l->lim->read_ms / 1000;
	tv.tv_usec = (l->lim->read_ms % 1000) * 1000;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	conn_add(l, fd, false);
}

/* Writes all of iov[0..n), past signals and short writes (the connection
 * is a blocking socket). 0, or -1 with errno set. */
static int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t k = writev(fd, iov, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

int conns_put(FCGX_Request *fx, const struct iovec *parts, int n)
{
	FCGX_Stream *out = fx->out;
	FCGI_Header hdr[PUT_IOV / 2];
	struct iovec iov[PUT_IOV];
	size_t total = 0, off = 0;
	int i = 0, ni = 0, nh = 0;

	for (int k = 0; k < n; k++)
		total += parts[k].iov_len;
	if (total < CONNS_PUT_DIRECT) {
		for (int k = 0; k < n; k++)
			if (parts[k].iov_len && FCGX_PutStr(parts[k].iov_base, (int)parts[k].iov_len, out) < 0)
				return -1;
		return 0;
	}
	/* What libfcgi holds goes first (and says whether the connection
	 * already failed). */
	if (out->isClosed || FCGX_FFlush(out))
		return -1;
	for (;;) {
		FCGI_Header *h;
		size_t rec = 0;

		while (i < n && parts[i].iov_len == off) {   /* an empty record would end the stream */
			i++;
			off = 0;
		}
		if (i == n)
			break;
		h = &hdr[nh++];
		iov[ni++] = (struct iovec){ h, sizeof(*h) };
		while (i < n && rec < RECORD_MAX && ni < PUT_IOV) {
			size_t take = parts[i].iov_len - off;

			if (take > RECORD_MAX - rec)
				take = RECORD_MAX - rec;
			if (take) {
				iov[ni++] = (struct iovec){ (char *)parts[i].iov_base + off, take };
				rec += take;
				off += take;
			}
			if (off == parts[i].iov_len) {
				i++;
				off = 0;
			}
		}
		*h = (FCGI_Header){
			.version = FCGI_VERSION_1,
			.type = FCGI_STDOUT,
			.requestIdB1 = (unsigned char)((fx->requestId >> 8) & 0xff),
			.requestIdB0 = (unsigned char)(fx->requestId & 0xff),
			.contentLengthB1 = (unsigned char)(rec >> 8),
			.contentLengthB0 = (unsigned char)(rec & 0xff),
		};
		if (ni + 2 > PUT_IOV || nh == PUT_IOV / 2) {
			if (writev_all(fx->ipcFd, iov, ni))
				goto failed;
			ni = nh = 0;
		}
	}
	if (ni && writev_all(fx->ipcFd, iov, ni))
		goto failed;
	return 0;
failed:
	/* As libfcgi's own failed write does: the stream holds the error, so
	 * FCGX_Finish_r() closes the connection rather than keep it. */
	if (!out->FCGI_errno)
		out->FCGI_errno = errno;
	out->isClosed = 1;
	return -1;
}

int conns_handoff_open(int handoff[2])
{
	return socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, handoff);
}

/* Sends fd over the hand-off pair: 0, or -1 (its queue is full, say). */
static int handoff_send(struct loop *l, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	char byte = 'c';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;

	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(l->hand_tx, &m, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

void conns_hand_off(void)
{
	struct loop *l = running;
	int sent = 0;

	if (!l || l->hand_tx < 0 || !l->current)
		return;
	for (int i = 0; i < l->lim->max && l->n > 1; i++) {
		struct conn *c = &l->c[i];

		/* One being closed has a request's unread end on it: it stays. */
		if (c->fx.ipcFd < 0 || c == l->current || c->closing)
			continue;
		if (handoff_send(l, c->fx.ipcFd)) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("handing a connection over: %s", strerror(errno));
			break;
		}
		/* The other child has its own copy: this one closes without
		 * nginx seeing anything. */
		conn_close(l, c);
		sent++;
	}
	if (sent)
		log_debug("handed %d connection(s) to the pool before a long wait", sent);
}

/* Takes connections other children handed over, as many as there is room
 * for (up to TAKE_MAX). */
static void handoff_take(struct loop *l)
{
	for (int k = 0; k < TAKE_MAX && make_room(l); k++) {
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		char byte;
		struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				    .msg_controllen = sizeof(u.buf) };
		struct cmsghdr *cm;
		int fd = -1;

		if (recvmsg(l->hand_rx, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
			return;   /* EAGAIN: nothing (left), or another child took it */
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
			if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
			    cm->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		if (fd >= 0)
			conn_add(l, fd, true);
	}
}

/* Closes connections idle past the limit; returns how long until the next
 * one would be (ms), or -1 when none is open. */
static int expire_idle(struct loop *l)
{
	int64_t now = mono_ms(), next = -1;

	for (int i = 0; i < l->lim->max && l->n > 0; i++) {
		struct conn *c = &l->c[i];
		int64_t left;

		if (c->fx.ipcFd < 0)
			continue;
		if (c->closing) {
			left = c->idle_since + CLOSE_LINGER_MS - now;
			if (left <= 0) {
				conn_close(l, c);
				continue;
			}
		} else {
			left = c->idle_since + l->lim->idle_ms - now;
		}
		if (left <= 0) {
			if (conn_ready(c) == 0) {
				conn_close(l, c);
				continue;
			}
			left = 0;   /* a request or the end is waiting: the next round serves it */
		}
		if (next < 0 || left < next)
			next = left;
	}
	return next < 0 ? -1 : (int)(next > INT32_MAX ? INT32_MAX : next);
}

static void handle(struct loop *l, const struct epoll_event *ev, int n, bool *accept_wanted)
{
	for (int i = 0; i < n; i++) {
		uint32_t slot = (uint32_t)ev[i].data.u64;
		int fd = (int)(ev[i].data.u64 >> 32);

		if (ev[i].data.u64 == HANDOFF_KEY) {
			handoff_take(l);
			continue;
		}
		if (slot == 0) {
			*accept_wanted = true;
			continue;
		}
		if (slot > (uint32_t)l->lim->max || l->c[slot - 1].fx.ipcFd != fd)
			continue;   /* closed since */
		conn_serve(l, &l->c[slot - 1]);
	}
}

int conns_run(int listen_fd, const struct conns_limits *lim, volatile sig_atomic_t *stop,
	      const sigset_t *waitmask, conns_serve_fn serve, void *arg)
{
	struct epoll_event ev[EVENTS_MAX];
	struct loop l;
	int rc = 0;

	memset(&l, 0, sizeof(l));
	l.lim = lim;
	l.listen_fd = listen_fd;
	l.serve = serve;
	l.arg = arg;
	l.hand_tx = lim->handoff[0];
	l.hand_rx = lim->handoff[1];
	web_addrs_load(&l);
	l.c = calloc((size_t)lim->max, sizeof(*l.c));
	l.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!l.c || l.ep < 0) {
		log_error("cannot set up the connection loop: %s", strerror(errno));
		free(l.c);
		return -1;
	}
	for (int i = 0; i < lim->max; i++)
		l.c[i].fx.ipcFd = -1;
	/* EPOLLEXCLUSIVE: a new connection wakes one waiting child, not all. */
	memset(&ev[0], 0, sizeof(ev[0]));
	ev[0].events = EPOLLIN | EPOLLEXCLUSIVE;
	ev[0].data.u64 = 0;
	if (epoll_ctl(l.ep, EPOLL_CTL_ADD, listen_fd, &ev[0])) {
		log_error("cannot wait on the listen socket: %s", strerror(errno));
		close(l.ep);
		free(l.c);
		return -1;
	}
	/* Handed-over connections wake one waiting child too. */
	if (l.hand_rx >= 0) {
		memset(&ev[0], 0, sizeof(ev[0]));
		ev[0].events = EPOLLIN | EPOLLEXCLUSIVE;
		ev[0].data.u64 = HANDOFF_KEY;
		if (epoll_ctl(l.ep, EPOLL_CTL_ADD, l.hand_rx, &ev[0])) {
			log_error("cannot wait on the hand-off pair: %s", strerror(errno));
			close(l.ep);
			free(l.c);
			return -1;
		}
	}
	running = &l;

	while (!*stop) {
		bool accept_wanted = false;
		int n = epoll_pwait(l.ep, ev, EVENTS_MAX, expire_idle(&l), waitmask);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_pwait: %s", strerror(errno));
			rc = -1;
			break;
		}
		handle(&l, ev, n, &accept_wanted);
		if (accept_wanted)
			conn_accept(&l);
	}

	/* Stopping: requests nginx has sent already are served, on this
	 * child's connections and on any handed over and not taken yet (the
	 * whole pool is stopping: nobody else may take them); then every
	 * connection is closed. Nothing new is accepted. */
	epoll_ctl(l.ep, EPOLL_CTL_DEL, listen_fd, NULL);
	for (int round = 0; round < 64; round++) {
		bool ignored = false;
		int n, before = l.n;

		if (l.hand_rx >= 0)
			handoff_take(&l);
		if (l.n == 0)
			break;
		n = epoll_wait(l.ep, ev, EVENTS_MAX, 0);
		if (n > 0)
			handle(&l, ev, n, &ignored);
		/* Nothing came over and nothing waits: done. */
		if (n <= 0 && l.n == before)
			break;
		for (int i = 0; i < lim->max; i++)
			if (l.c[i].fx.ipcFd >= 0 && l.c[i].served && conn_ready(&l.c[i]) == 0)
				conn_close(&l, &l.c[i]);
	}
	running = NULL;
	for (int i = 0; i < lim->max; i++)
		if (l.c[i].fx.ipcFd >= 0)
			conn_close(&l, &l.c[i]);
	close(l.ep);
	free(l.c);
	return rc;
}
