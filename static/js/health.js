// health.js - one watcher of GET /api/health for the whole page.
//
// startHealth() polls every few seconds (quietly: no toasts) while the tab is
// visible; onHealth(fn, signal) calls fn({health, error, state, problems, at})
// with the latest report now and on every new one, until signal aborts.

import { api } from "./api.js";
import { poll } from "./poll.js";

const INTERVAL_MS = 5000;
// A worker silent for longer than this is reported, whatever Docker says.
const HEARTBEAT_STALE_S = 60;

let last = null;
let started = false;
const listeners = new Set();

// What a health answer means: state "ok", "degraded" or "down", and the
// problems in words.
export function assess(health, error) {
	const problems = [];
	if (!health) {
		problems.push(error ? error.message : "no answer yet");
		return { state: error ? "down" : "unknown", problems };
	}
	// Before sign-in the answer is only {"status":"ok"|"down"}.
	if (health.db === undefined) {
		if (health.status !== "ok")
			problems.push("service: " + health.status);
		return { state: health.status === "ok" ? "ok" : "down", problems };
	}
	if (health.db !== "ok")
		problems.push("database: " + health.db);
	const beat = health.worker && health.worker.last_heartbeat_s;
	if (beat === null || beat === undefined)
		problems.push("worker: no heartbeat yet");
	else if (beat > HEARTBEAT_STALE_S)
		problems.push(`worker: last heartbeat ${beat} s ago`);
	if (health.docker !== "ok")
		problems.push("docker: " + health.docker);
	if (health.claude_cli && health.claude_cli.ok === false)
		problems.push("Claude Code CLI: " + (health.claude_cli.error || "not working"));
	if (health.db !== "ok")
		return { state: "down", problems };
	return { state: problems.length ? "degraded" : "ok", problems };
}

function publish(health, error) {
	last = { health, error, at: Date.now(), ...assess(health, error) };
	for (const fn of listeners)
		fn(last);
}

export function startHealth() {
	if (started)
		return;
	started = true;
	poll({
		fn: () => api.get("/api/health", { toast: false }),
		interval: INTERVAL_MS,
		maxInterval: 30000,
		onResult: (h) => publish(h, null),
		onError: (err) => {
			// A 503 still carries the report (database down).
			const body = err.body && typeof err.body.status === "string" ? err.body : null;
			publish(body, err);
			return true;
		},
	});
}

export function onHealth(fn, signal) {
	listeners.add(fn);
	signal?.addEventListener("abort", () => listeners.delete(fn), { once: true });
	if (last)
		fn(last);
}
