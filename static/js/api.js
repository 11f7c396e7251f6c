// api.js - the one way the UI talks to /api/.
//
//   import { api, session } from "./api.js";
//   const { jobs } = await api.get("/api/jobs?limit=20");
//   const { job } = await api.post("/api/jobs", { kind: "echo", args: {...} });
//
// - Cookies go along (credentials "same-origin"); the session cookie is
//   HttpOnly, so the CSRF token comes from GET /api/session, loaded once and
//   cached, and is sent as X-CSRF-Token on every write.
// - A write answered 403 csrf_failed reloads the session and is retried once
//   (the session may have expired and been replaced).
// - A non-2xx answer throws ApiError(status, code, message) from the API's
//   {"error":{"code","message"}} body, shows it as an error toast unless the
//   caller passes {toast: false}, and fires a CustomEvent "anyon:api-error"
//   on window whose detail is {status, code, message, method, path}.
// - A network failure is ApiError(0, "network_error", ...); an aborted
//   request rethrows the AbortError untouched and shows nothing.

import { showToast } from "./toast.js";

export class ApiError extends Error {
	constructor(status, code, message, body = null) {
		super(message);
		this.name = "ApiError";
		this.status = status; // HTTP status, 0 when the server was not reached
		this.code = code;     // the API's stable error code
		this.body = body;     // the parsed answer, if it was JSON
	}
}

const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let sessionPromise = null;

function isAbort(err) {
	return err && err.name === "AbortError";
}

// One HTTP exchange. Returns the parsed JSON body (null when empty) or
// throws ApiError; does not toast, does not retry.
// cache is fetch()'s: "no-store" unless the caller asks for "no-cache" (an
// answer with an ETag: the browser asks with If-None-Match and a 304 gives
// back the body it kept).
async function exchange(method, path, { body, csrf, signal, cache = "no-store" } = {}) {
	const headers = { Accept: "application/json" };
	const init = { method, headers, credentials: "same-origin", cache, signal };

	if (body !== undefined) {
		headers["Content-Type"] = "application/json";
		init.body = JSON.stringify(body);
	}
	if (csrf)
		headers["X-CSRF-Token"] = csrf;

	let res;
	try {
		res = await fetch(path, init);
	} catch (err) {
		if (isAbort(err))
			throw err;
		throw new ApiError(0, "network_error", "cannot reach the server");
	}

	const text = await res.text();
	let data = null;
	if (text) {
		try {
			data = JSON.parse(text);
		} catch {
			data = null;
		}
	}
	if (res.ok) {
		if (text && data === null)
			throw new ApiError(res.status, "bad_response", `${method} ${path}: the answer is not JSON`);
		return data;
	}
	const e = data && typeof data === "object" && data.error;
	if (e && typeof e.code === "string")
		throw new ApiError(res.status, e.code, String(e.message ?? e.code), data);
	throw new ApiError(res.status, "http_" + res.status,
		`${method} ${path}: HTTP ${res.status} ${res.statusText}`.trim(), data);
}

// The session: {user, csrf_token, features}. Loaded once and shared; pass
// {reload: true} to ask the server again (for instance after signing in).
export function session({ reload = false } = {}) {
	if (!sessionPromise || reload) {
		const p = exchange("GET", "/api/session");
		sessionPromise = p;
		// A failed load is not cached: the next caller tries again.
		p.catch(() => { if (sessionPromise === p) sessionPromise = null; });
	}
	return sessionPromise;
}

function report(err, method, path, toast) {
	window.dispatchEvent(new CustomEvent("anyon:api-error", {
		detail: { status: err.status, code: err.code, message: err.message, method, path },
	}));
	if (toast)
		showToast(err.message, { kind: "error", code: err.code });
}

// request(method, path, {body, toast = true, signal, cache}) -> parsed JSON
// body; cache ("no-cache") only for reads.
export async function request(method, path, { body, toast = true, signal, cache } = {}) {
	method = method.toUpperCase();
	const write = WRITES.has(method);
	try {
		if (!write)
			return await exchange(method, path, { body, signal, cache });
		let s = await session();
		try {
			return await exchange(method, path, { body, csrf: s.csrf_token, signal });
		} catch (err) {
			if (!(err instanceof ApiError) || err.status !== 403 || err.code !== "csrf_failed")
				throw err;
			s = await session({ reload: true });
			return await exchange(method, path, { body, csrf: s.csrf_token, signal });
		}
	} catch (err) {
		if (isAbort(err))
			throw err;
		if (!(err instanceof ApiError))
			err = new ApiError(0, "client_error", String(err && err.message || err));
		report(err, method, path, toast);
		throw err;
	}
}

export const api = {
	get: (path, opts) => request("GET", path, opts),
	post: (path, body, opts) => request("POST", path, { ...opts, body }),
	put: (path, body, opts) => request("PUT", path, { ...opts, body }),
	patch: (path, body, opts) => request("PATCH", path, { ...opts, body }),
	delete: (path, opts) => request("DELETE", path, opts),
};
