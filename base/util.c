#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "base/util.h"

int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rand_bytes(void *buf, size_t n)
{
	if (n > (size_t)0x7fffffff)
		return -1;
	return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

void hex_encode(const void *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	const unsigned char *p = in;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, void *out, size_t n)
{
	unsigned char *p = out;

	if (strlen(in) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		p[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

int sha256(const void *data, size_t len, unsigned char out[32])
{
	/* Fetched once per process: EVP_sha256() would look the algorithm up
	 * in the provider on every call (17% of GET /api/session). Lives until
	 * exit, shared by forked children. */
	static EVP_MD *md;
	unsigned int outlen = 0;

	if (!md && !(md = EVP_MD_fetch(NULL, "SHA256", NULL)))
		return -1;
	if (EVP_Digest(data, len, out, &outlen, md, NULL) != 1 || outlen != 32)
		return -1;
	return 0;
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

bool str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (size == 0)
		return false;
	if (n >= size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}
