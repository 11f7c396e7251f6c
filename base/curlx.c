#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/curlx.h"
#include "base/util.h"

size_t curlx_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct curlx_body *b = arg;
	size_t len = size * n;
	char *grown;

	if (len > b->max || b->len > b->max - len) {
		b->too_large = true;
		return 0;   /* aborts the transfer */
	}
	grown = realloc(b->buf, b->len + len + 1);
	if (!grown)
		return 0;
	b->buf = grown;
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return len;
}

long curlx_timeout_ms(int64_t deadline_ms, long max_ms, bool *cut)
{
	int64_t left;

	*cut = false;
	if (deadline_ms <= 0)
		return max_ms;
	left = deadline_ms - mono_ms();
	if (left <= 0) {
		*cut = true;
		return 0;
	}
	if (left < max_ms) {
		*cut = true;
		return (long)left;
	}
	return max_ms;
}

void curlx_error(char *out, size_t outlen, CURLcode rc, const char *errbuf)
{
	snprintf(out, outlen, "%s", errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

static void (*long_wait_hook)(void);

void curlx_set_long_wait_hook(void (*fn)(void))
{
	long_wait_hook = fn;
}

void curlx_long_wait(void)
{
	if (long_wait_hook)
		long_wait_hook();
}
