// app.js - the entry module: header state and the hash router.
//
// In cloud mode nobody gets past the sign-in screen without a user: the
// router shows it whatever the route, and every session change (sign-in,
// sign-out, an expired session) is routed again. When GitHub refuses the
// stored token (an API answer github_token_invalid, or the session's
// github.token_invalid) the sign-in-again dialog opens by itself; when the
// change feed says a Claude credential was refused (credential.invalid), a
// banner links to the Claude card (claude.js).
//
// Routes are "#/<screen>[/<param>...]". A screen module exports
// render(main, ctx) where ctx is {session, params, signal}; the signal aborts
// when the user leaves the screen, so its polls and fetches stop. render may
// return {update(params)} to take a change of params (#/jobs -> #/jobs/4)
// without being built again; update returning false asks for a new build.

import { avatarUrl, githubState, initials, isCloud, loadSession, needsSignIn, refreshSession,
	signOut, takeSignedOut } from "./auth.js";
import { showCliProblem, watchClaudeCredential } from "./claude.js";
import { pauseFeed } from "./store.js";
import { el, replaceChildren } from "./dom.js";
import { deviceFlowOpen, openDeviceFlow } from "./github.js";
import { onHealth, startHealth } from "./health.js";
import * as board from "./screens/board.js";
import * as jobs from "./screens/jobs.js";
import * as log from "./screens/log.js";
import * as project from "./screens/project.js";
import * as settings from "./screens/settings.js";
import * as signin from "./screens/signin.js";
import * as task from "./screens/task.js";

const SCREENS = {
	board: { title: "Board", module: board },
	jobs: { title: "Jobs", module: jobs },
	log: { title: "Log", module: log, nav: "jobs" },
	project: { title: "Project", module: project, nav: "board" },
	settings: { title: "Settings", module: settings },
	task: { title: "Task", module: task, nav: "board" },
};
const DEFAULT_ROUTE = "#/board";

let current = null; // {name, controller, handle, pending}

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

async function route({ force = false, reason = null } = {}) {
	const hash = location.hash;
	// Only "#/..." is ours; anything else (a skip link) leaves the screen be.
	if (!hash.startsWith("#/")) {
		if (current && !force)
			return;
		history.replaceState(null, "", DEFAULT_ROUTE);
	}
	const { name, params } = parseHash(location.hash);
	const main = document.getElementById("main");

	if (!force && current && current.name === name && current.handle && current.handle.update) {
		if (current.handle.update(params) !== false)
			return;
	}
	const moved = current !== null;
	if (current)
		current.controller.abort();
	const controller = new AbortController();
	current = { name, controller, handle: null, pending: true };
	const here = current;

	const screen = SCREENS[name];
	main.replaceChildren();
	// The session decides first: in cloud mode, no user, no screens.
	const s = await loadSession();
	if (controller.signal.aborted)
		return;
	here.pending = false;
	if (needsSignIn(s)) {
		here.name = "signin";
		setActiveNav(null);
		document.title = "Sign in \u00b7 anyon";
		signin.render(main, { signal: controller.signal, reason });
		return;
	}
	setActiveNav(screen && screen.nav ? screen.nav : name);
	document.title = (screen ? screen.title : "Not found") + " \u00b7 anyon";
	if (!screen) {
		notFound(main, name);
		return;
	}
	here.handle = screen.module.render(main, { session: s, params, signal: controller.signal }) || null;
	if (moved)
		main.focus({ preventScroll: true });
}

function renderAvatar(node, user) {
	const url = avatarUrl(user);
	node.replaceChildren();
	node.textContent = initials(user);
	if (!url)
		return;
	// Initials until (unless) the picture loads.
	const img = el("img", { src: url, alt: "", width: 28, height: 28, decoding: "async", referrerpolicy: "no-referrer" });
	img.addEventListener("load", () => node.replaceChildren(img), { once: true });
}

function renderSession(s) {
	const user = document.getElementById("session-user");
	const avatar = document.getElementById("session-avatar");
	const badge = document.getElementById("mode-badge");
	const out = document.getElementById("signout");
	if (!s) {
		document.body.dataset.auth = "unknown";
		user.textContent = "offline";
		avatar.textContent = "?";
		badge.textContent = "?";
		badge.dataset.mode = "";
		out.hidden = true;
		return;
	}
	const cloud = isCloud(s);
	document.body.dataset.auth = s.user ? "signed-in" : "signed-out";
	badge.textContent = cloud ? "cloud" : "local";
	badge.dataset.mode = cloud ? "cloud" : "local";
	badge.title = cloud ? "Cloud mode: people sign in with GitHub"
		: "Local mode: one implicit user, no sign-in";
	if (s.user) {
		user.textContent = s.user.login;
		user.title = s.user.name ? `${s.user.name} (${s.user.login})` : s.user.login;
		renderAvatar(avatar, s.user);
	} else {
		user.textContent = "not signed in";
		user.title = "";
		avatar.textContent = "?";
	}
	out.hidden = !(cloud && s.user);
}

// The sign-in-again dialog, offered once per episode of a refused token
// (the session says so), and every time an API call hits it.
let reloginOffered = false;

function offerRelogin(force) {
	if (deviceFlowOpen())
		return;
	if (reloginOffered && !force)
		return;
	reloginOffered = true;
	openDeviceFlow({ purpose: "relogin" });
}

function onSessionChange(s) {
	renderSession(s);
	if (current && !current.pending) {
		const onSignIn = current.name === "signin";
		if (needsSignIn(s) && !onSignIn) {
			// Signed out here, or the session ended (expired, or elsewhere).
			const why = takeSignedOut() ? null : "Your session has ended. Sign in again to continue.";
			route({ force: true, reason: why });
		} else if (s && !needsSignIn(s) && onSignIn) {
			// Signed in: to the board.
			history.replaceState(null, "", DEFAULT_ROUTE);
			route({ force: true });
		}
	}
	if (s && s.user) {
		if (githubState(s).state === "invalid")
			offerRelogin(false);
		else
			reloginOffered = false;
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

function start() {
	// The skip link would otherwise put "#main" in the address bar.
	document.querySelector(".skip-link")?.addEventListener("click", (ev) => {
		ev.preventDefault();
		document.getElementById("main").focus();
	});
	document.getElementById("signout").addEventListener("click", async (ev) => {
		ev.currentTarget.disabled = true;
		pauseFeed();   // a poll in flight would only meet the 401 of a closed session
		try {
			await signOut();
		} catch {
			// api.js showed why
		} finally {
			document.getElementById("signout").disabled = false;
		}
	});
	window.addEventListener("hashchange", () => route());
	window.addEventListener("anyon:session", (ev) => onSessionChange(ev.detail));
	window.addEventListener("anyon:api-error", (ev) => {
		const code = ev.detail.code;
		if (code === "unauthenticated") {
			refreshSession();
		} else if (code === "github_token_invalid") {
			offerRelogin(true);
			refreshSession(); // the settings card shows it too
		}
	});
	onHealth(renderHealthDot);
	onHealth(({ health }) => showCliProblem(health));
	startHealth();
	watchClaudeCredential();
	route();
}

start();
