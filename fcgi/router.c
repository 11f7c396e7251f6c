#include "autoconfig.h"

#include <stdbool.h>
#include <string.h>

#include "fcgi/router.h"

static bool seg_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '~' || c == '-';
}

/* Matches one pattern against path, filling params. */
static bool pattern_match(const char *pat, const char *path, struct route_params *params)
{
	params->n = 0;
	while (*pat && *path) {
		if (*pat == '{') {
			const char *close = strchr(pat, '}');
			size_t len = 0;
			int i = params->n;

			if (!close || i >= ROUTE_MAX_PARAMS)
				return false;
			while (path[len] && path[len] != '/') {
				if (!seg_char_ok(path[len]) || len + 1 >= ROUTE_PARAM_MAX)
					return false;
				len++;
			}
			if (len == 0)
				return false;
			params->name[i] = pat + 1;
			params->name_len[i] = (size_t)(close - pat - 1);
			memcpy(params->value[i], path, len);
			params->value[i][len] = '\0';
			params->n++;
			pat = close + 1;
			path += len;
			continue;
		}
		if (*pat != *path)
			return false;
		pat++;
		path++;
	}
	return *pat == '\0' && *path == '\0';
}

enum route_result route_match(const struct route *table, size_t n, bool cloud, const char *method,
			      const char *path, const struct route **found,
			      struct route_params *params, char *allow, size_t allowlen)
{
	struct route_params scratch;
	bool path_known = false;
	size_t used = 0;

	if (allowlen)
		allow[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((table[i].mode == MODE_CLOUD && !cloud) || (table[i].mode == MODE_LOCAL && cloud) ||
		    !pattern_match(table[i].pattern, path, &scratch))
			continue;
		if (strcmp(table[i].method, method) == 0) {
			*found = &table[i];
			*params = scratch;
			return ROUTE_FOUND;
		}
		path_known = true;
		if (allowlen && !strstr(allow, table[i].method)) {
			size_t mlen = strlen(table[i].method);

			if (used + mlen + 3 < allowlen) {
				if (used) {
					memcpy(allow + used, ", ", 2);
					used += 2;
				}
				memcpy(allow + used, table[i].method, mlen + 1);
				used += mlen;
			}
		}
	}
	return path_known ? ROUTE_METHOD_NOT_ALLOWED : ROUTE_NOT_FOUND;
}

const char *route_param(const struct route_params *params, const char *name)
{
	size_t len = strlen(name);

	for (int i = 0; i < params->n; i++)
		if (params->name_len[i] == len && memcmp(params->name[i], name, len) == 0)
			return params->value[i];
	return NULL;
}
