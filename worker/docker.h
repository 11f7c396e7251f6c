/* docker.h - the Docker Engine API over its unix socket, through libcurl.
 * For now: reachability and version, reported in the worker's heartbeat. */
#ifndef ANYON_DOCKER_H
#define ANYON_DOCKER_H

#include <stddef.h>

/* GETs /version on the engine at socket_path within timeout_ms. On success
 * returns 0 and writes "ENGINE (API X.Y)" to version; otherwise -1 with a
 * reason in version. */
int docker_probe(const char *socket_path, long timeout_ms, char *version, size_t len);

#endif
