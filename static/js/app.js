// app.js - the entry module: header state and the hash router.
//
// Routes are "#/<screen>[/<param>...]". A screen module exports
// render(main, ctx) where ctx is {session, params, signal}; the signal aborts
// when the user leaves the screen, so its polls and fetches stop. render may
// return {update(params)} to take a change of params (#/jobs -> #/jobs/4)
// without being built again.

import { session } from "./api.js";
import { el, replaceChildren } from "./dom.js";
import { onHealth, startHealth } from "./health.js";
import * as board from "./screens/board.js";
import * as jobs from "./screens/jobs.js";
import * as settings from "./screens/settings.js";

const SCREENS = {
	board: { title: "Board", module: board },
	jobs: { title: "Jobs", module: jobs },
	settings: { title: "Settings", module: settings },
};
const DEFAULT_ROUTE = "#/board";

let current = null; // {name, controller, handle}

function parseHash(hash) {
	const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
	return { name: parts[0] || "", params: parts.slice(1) };
}

function setActiveNav(name) {
	for (const a of document.querySelectorAll(".nav-link")) {
		if (a.dataset.route === name)
			a.setAttribute("aria-current", "page");
		else
			a.removeAttribute("aria-current");
	}
}

function notFound(main, name) {
	replaceChildren(main,
		el("section", { class: "screen" },
			el("div", { class: "card empty" },
				el("h1", { text: "No such page" }),
				el("p", { class: "muted" }, "There is no screen called \u201c", name, "\u201d."),
				el("p", {}, el("a", { href: DEFAULT_ROUTE }, "Go to the board")))));
}

async function route() {
	const hash = location.hash;
	// Only "#/..." is ours; anything else (a skip link) leaves the screen be.
	if (!hash.startsWith("#/")) {
		if (current)
			return;
		history.replaceState(null, "", DEFAULT_ROUTE);
	}
	const { name, params } = parseHash(location.hash);
	const main = document.getElementById("main");

	if (current && current.name === name && current.handle && current.handle.update) {
		current.handle.update(params);
		return;
	}
	const moved = current !== null;
	if (current)
		current.controller.abort();
	const controller = new AbortController();
	current = { name, controller, handle: null };
	setActiveNav(name);

	const screen = SCREENS[name];
	document.title = (screen ? screen.title : "Not found") + " \u00b7 anyon";
	if (!screen) {
		notFound(main, name);
		return;
	}
	main.replaceChildren();
	let s = null;
	try {
		s = await session();
	} catch {
		s = null; // the API layer showed why; screens cope with no session
	}
	if (controller.signal.aborted)
		return;
	current.handle = screen.module.render(main, { session: s, params, signal: controller.signal }) || null;
	if (moved)
		main.focus({ preventScroll: true });
}

function renderSession(s) {
	const user = document.getElementById("session-user");
	const avatar = document.getElementById("session-avatar");
	const badge = document.getElementById("mode-badge");
	if (!s) {
		user.textContent = "offline";
		avatar.textContent = "?";
		badge.textContent = "?";
		badge.dataset.mode = "";
		return;
	}
	const cloud = !!(s.features && s.features.cloud);
	badge.textContent = cloud ? "cloud" : "local";
	badge.dataset.mode = cloud ? "cloud" : "local";
	badge.title = cloud ? "Cloud mode: people sign in with GitHub"
		: "Local mode: one implicit user, no sign-in";
	if (s.user) {
		user.textContent = s.user.login;
		user.title = s.user.name || s.user.login;
		avatar.textContent = (s.user.login[0] || "?").toUpperCase();
	} else {
		user.textContent = "not signed in";
		user.title = "";
		avatar.textContent = "?";
	}
}

function renderHealthDot({ state, problems }) {
	const dot = document.getElementById("health-dot");
	const words = { ok: "all systems ok", degraded: "degraded", down: "unavailable", unknown: "checking" };
	let label = "Service health: " + (words[state] || state);
	if (state !== "ok" && problems.length)
		label += " \u2014 " + problems.join("; ");
	dot.dataset.state = state;
	dot.setAttribute("aria-label", label);
	dot.title = label;
}

async function loadSession(reload) {
	try {
		renderSession(await session({ reload }));
	} catch {
		renderSession(null);
	}
}

function start() {
	// The skip link would otherwise put "#main" in the address bar.
	document.querySelector(".skip-link")?.addEventListener("click", (ev) => {
		ev.preventDefault();
		document.getElementById("main").focus();
	});
	window.addEventListener("hashchange", route);
	window.addEventListener("anyon:api-error", (ev) => {
		if (ev.detail.code === "unauthenticated")
			loadSession(true);
	});
	onHealth(renderHealthDot);
	startHealth();
	loadSession(false);
	route();
}

start();
