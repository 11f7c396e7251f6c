#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/json.h"
#include "worker/docker.h"

#define PROBE_MAX_BODY (64 * 1024)

struct body {
	char buf[PROBE_MAX_BODY];
	size_t len;
	int overflow;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (b->len + len >= sizeof(b->buf)) {
		b->overflow = 1;
		return 0;   /* aborts the transfer */
	}
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	return len;
}

int docker_probe(const char *socket_path, long timeout_ms, char *version, size_t len)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	struct body *b = calloc(1, sizeof(*b));
	const char *engine = NULL, *api = NULL;
	json_object *doc = NULL;
	char jerr[64];
	long status = 0;
	CURL *c = curl_easy_init();
	CURLcode rc;
	int ret = -1;

	if (!c || !b) {
		snprintf(version, len, "out of memory");
		goto out;
	}
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	/* The host part is ignored on a unix socket; the version prefix is not
	 * needed for /version, which every engine answers. */
	curl_easy_setopt(c, CURLOPT_URL, "http://docker/version");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(version, len, "%s", b->overflow ? "answer too large" :
			 curl_err[0] ? curl_err : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(version, len, "engine answered HTTP %ld", status);
		goto out;
	}
	if (json_parse(b->buf, b->len, &doc, jerr, sizeof(jerr)) ||
	    json_get_str(doc, "Version", &engine) || json_get_str(doc, "ApiVersion", &api)) {
		snprintf(version, len, "engine answered something that is not a version");
		goto out;
	}
	snprintf(version, len, "%.32s (API %.16s)", engine, api);
	ret = 0;
out:
	json_object_put(doc);
	curl_easy_cleanup(c);
	free(b);
	return ret;
}
