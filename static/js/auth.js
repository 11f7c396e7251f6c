// auth.js - who is signed in, for every part of the page.
//
//   const s = await loadSession();        // cached GET /api/session
//   await refreshSession();               // ask again (after a sign-in)
//   onSession((s) => ..., signal);        // every (re)load, until signal aborts
//
// Every (re)load also fires a window CustomEvent "anyon:session" whose
// detail is the session (null when it could not be loaded). A sign-in
// rotates the session token, so the session is loaded again afterwards:
// api.js then sends the new CSRF token.

import { api, session } from "./api.js";

let current = null;
let loaded = false;
const listeners = new Set();

function publish(s) {
	current = s;
	loaded = true;
	for (const fn of listeners)
		fn(s);
	window.dispatchEvent(new CustomEvent("anyon:session", { detail: s }));
	return s;
}

export function currentSession() {
	return current;
}

export async function loadSession() {
	let s = null;
	try {
		s = await session();
	} catch {
		s = null; // api.js showed why
	}
	if (s !== current || !loaded)
		publish(s);
	return s;
}

export async function refreshSession() {
	let s = null;
	try {
		s = await session({ reload: true });
	} catch {
		s = null;
	}
	return publish(s);
}

export function onSession(fn, signal) {
	listeners.add(fn);
	signal?.addEventListener("abort", () => listeners.delete(fn), { once: true });
}

export const isCloud = (s) => !!(s && s.features && s.features.cloud);

// Who may run the "container" job kind: the local user, and administrators
// in cloud mode (the server decides; this only hides the form from others).
export const canRunContainers = (s) => !!(s && s.user && (s.user.is_local || s.user.is_admin));

// Cloud mode without a user: the whole app waits behind the sign-in screen.
export const needsSignIn = (s) => isCloud(s) && !s.user;

// {state: "connected"|"disconnected"|"invalid", login}
export function githubState(s) {
	const g = (s && s.github) || {};
	if (g.connected && g.token_invalid)
		return { state: "invalid", login: g.login || null };
	if (g.connected)
		return { state: "connected", login: g.login || null };
	return { state: "disconnected", login: null };
}

let signedOut = false;

export async function signOut() {
	await api.post("/api/auth/logout");
	signedOut = true;
	await refreshSession();
}

// True once after signOut(): the sign-in screen then needs no explanation.
export function takeSignedOut() {
	const v = signedOut;
	signedOut = false;
	return v;
}

// Only GitHub's avatar host may serve images (the CSP says so too).
export function avatarUrl(user) {
	const raw = user && user.avatar_url;
	if (!raw || typeof raw !== "string")
		return null;
	try {
		const u = new URL(raw);
		return u.protocol === "https:" && u.hostname === "avatars.githubusercontent.com" ? u.href : null;
	} catch {
		return null;
	}
}

export function initials(user) {
	const login = (user && user.login) || "";
	return (login[0] || "?").toUpperCase();
}
