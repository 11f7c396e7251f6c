// github.js - the GitHub device-flow dialog: sign in, connect, sign in again.
//
//   openDeviceFlow({ purpose: "signin" | "connect" | "relogin", onComplete });
//
// The dialog (#device-modal) starts a flow (POST /api/auth/github/device/start),
// shows the user code large with a copy button (#device-copy) and a link to
// GitHub's verification page (#device-link, a new tab), then polls
// POST /api/auth/github/device/poll no faster than the server allows
// (retry_after, else interval) until the flow ends. #device-status says
// where it stands (data-state starting|pending|complete|expired|denied|error);
// a flow that ended badly offers "Start again" (#device-restart). On
// "complete" the session is loaded again (the sign-in rotated its token and
// so its CSRF token) before onComplete(session) runs.
//
// "relogin" first explains that GitHub refused the stored token and starts
// the flow only when asked (#device-begin): nothing is sent to GitHub behind
// the user's back. Only one such dialog is open at a time.

import { api } from "./api.js";
import { refreshSession } from "./auth.js";
import { modal } from "./dialog.js";
import { el, replaceChildren } from "./dom.js";
import { poll, retryable } from "./poll.js";
import { toastSuccess } from "./toast.js";

const TITLES = {
	signin: "Sign in with GitHub",
	connect: "Connect GitHub",
	relogin: "Sign in to GitHub again",
};

let active = null; // the open dialog's handle

export function deviceFlowOpen() {
	return !!(active && active.isOpen);
}

function sleep(ms, signal) {
	return new Promise((resolve) => {
		if (signal.aborted)
			return resolve();
		const t = setTimeout(done, ms);
		function done() {
			clearTimeout(t);
			signal.removeEventListener("abort", done);
			resolve();
		}
		signal.addEventListener("abort", done, { once: true });
	});
}

function safeUrl(raw) {
	try {
		const u = new URL(raw);
		return u.protocol === "https:" || u.protocol === "http:" ? u : null;
	} catch {
		return null;
	}
}

function mmss(seconds) {
	const s = Math.max(0, Math.floor(seconds));
	return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// Copies text; falls back to selecting it (execCommand) where the async
// clipboard is unavailable or refused. Resolves true when it was copied.
async function copyText(text, node) {
	try {
		if (navigator.clipboard && window.isSecureContext) {
			await navigator.clipboard.writeText(text);
			return true;
		}
	} catch {
		// fall through to the old way
	}
	const sel = window.getSelection();
	const range = document.createRange();
	range.selectNodeContents(node);
	sel.removeAllRanges();
	sel.addRange(range);
	let ok = false;
	try {
		ok = document.execCommand("copy");
	} catch {
		ok = false;
	}
	return ok;
}

// The GitHub mark, as inline SVG (no image request, no inline style).
export function githubMark() {
	const NS = "http://www.w3.org/2000/svg";
	const svg = document.createElementNS(NS, "svg");
	svg.setAttribute("viewBox", "0 0 16 16");
	svg.setAttribute("width", "16");
	svg.setAttribute("height", "16");
	svg.setAttribute("aria-hidden", "true");
	svg.setAttribute("focusable", "false");
	svg.setAttribute("class", "gh-mark");
	const path = document.createElementNS(NS, "path");
	path.setAttribute("fill", "currentColor");
	path.setAttribute("d", "M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 " +
		"0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52" +
		"-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64" +
		"-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32" +
		"-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27" +
		".82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46" +
		".55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z");
	svg.append(path);
	return svg;
}

export function openDeviceFlow({ purpose = "signin", onComplete } = {}) {
	if (deviceFlowOpen()) {
		active.dialog.focus();
		return active;
	}
	let controller = null; // the current flow's polling
	let countdown = 0;

	const d = modal({
		id: "device-modal",
		title: TITLES[purpose] || TITLES.signin,
		className: "device-modal",
		backdropClose: false,
		onClose: () => {
			controller?.abort();
			clearInterval(countdown);
			if (active === d)
				active = null;
		},
	});
	d.dialog.dataset.purpose = purpose;
	active = d;

	const status = el("div", {
		id: "device-status", class: "device-status", role: "status", "aria-live": "polite",
		dataset: { state: "starting" },
	});
	const restart = el("button", { id: "device-restart", class: "btn btn-primary", type: "button", hidden: true },
		"Start again");
	const cancel = el("button", { id: "device-cancel", class: "btn", type: "button" }, "Cancel");
	const go = el("button", { id: "device-begin", class: "btn btn-primary", type: "button", hidden: true },
		githubMark(), "Sign in with GitHub");
	// Outside the live region: a screen reader need not hear every second.
	const expiry = el("p", { id: "device-expiry", class: "device-expiry muted small", hidden: true });
	restart.addEventListener("click", () => begin());
	go.addEventListener("click", () => begin());
	cancel.addEventListener("click", () => d.close());
	d.foot.hidden = false;
	replaceChildren(d.foot, el("span", { class: "spacer" }), cancel, go, restart);

	function setStatus(state, ...text) {
		status.dataset.state = state;
		replaceChildren(status,
			el("span", { class: "device-status-icon", "aria-hidden": "true" }),
			el("span", { class: "device-status-text" }, ...text));
	}

	function ended(state, message) {
		clearInterval(countdown);
		expiry.hidden = true;
		setStatus(state, message);
		restart.hidden = false;
		cancel.textContent = "Close";
		d.body.querySelector(".device-steps")?.setAttribute("data-ended", "true");
		restart.focus();
	}

	// The code and the link, once the server gave them.
	function showCode(flow) {
		const code = el("code", { id: "device-user-code", class: "device-code" }, flow.user_code);
		const copy = el("button", {
			id: "device-copy", class: "btn btn-sm", type: "button",
			"aria-label": "Copy the code " + flow.user_code,
		}, "Copy");
		copy.addEventListener("click", async () => {
			const ok = await copyText(flow.user_code, code);
			copy.textContent = ok ? "Copied \u2713" : "Press Ctrl+C";
			copy.dataset.copied = String(ok);
			setTimeout(() => {
				copy.textContent = "Copy";
				delete copy.dataset.copied;
			}, 2000);
		});
		const url = safeUrl(flow.verification_uri);
		const link = url
			? el("a", {
				id: "device-link", class: "btn btn-primary device-link", href: url.href,
				target: "_blank", rel: "noopener noreferrer",
			}, githubMark(), "Open ", url.host + url.pathname.replace(/\/$/, ""),
			el("span", { class: "visually-hidden" }, " (opens in a new tab)"),
			el("span", { class: "ext", "aria-hidden": "true" }, "\u2197"))
			: el("span", { id: "device-link", class: "muted" }, "GitHub's device page");

		replaceChildren(d.body,
			purpose === "relogin" ? reloginNote() : null,
			el("ol", { class: "device-steps" },
				el("li", {},
					el("span", { class: "step-n", "aria-hidden": "true" }, "1"),
					el("div", { class: "step-body" },
						el("p", { class: "step-title" }, "Copy your one-time code"),
						el("div", { class: "device-code-row" }, code, copy))),
				el("li", {},
					el("span", { class: "step-n", "aria-hidden": "true" }, "2"),
					el("div", { class: "step-body" },
						el("p", { class: "step-title" }, "Enter it on GitHub and authorize anyon"),
						el("p", { class: "muted small" },
							"The page opens in a new tab. Come back here afterwards; this window notices by itself. " +
							"Never enter a code that you did not start yourself, here."),
						link))),
			status, expiry);
		link.focus?.();
	}

	function reloginNote() {
		return el("div", { class: "callout callout-warn", id: "device-relogin-note" },
			el("strong", {}, "GitHub no longer accepts your token."),
			" It expired or was revoked. Sign in again to keep working with your repositories.");
	}

	async function begin() {
		controller?.abort();
		controller = new AbortController();
		const signal = controller.signal;
		clearInterval(countdown);
		restart.hidden = true;
		go.hidden = true;
		expiry.hidden = true;
		cancel.textContent = "Cancel";
		replaceChildren(d.body,
			purpose === "relogin" ? reloginNote() : null,
			el("div", { class: "device-loading" }, el("span", { class: "spinner", "aria-hidden": "true" }),
				"Asking GitHub for a code\u2026"),
			status);
		setStatus("starting", "Starting\u2026");

		let flow;
		try {
			flow = await api.post("/api/auth/github/device/start", undefined, { toast: false, signal });
		} catch (err) {
			if (err.name === "AbortError")
				return;
			d.body.querySelector(".device-loading")?.remove();
			ended("error", err.message || "Could not start the sign-in.");
			return;
		}
		if (signal.aborted)
			return;
		showCode(flow);

		const deadline = Date.now() + (flow.expires_in || 900) * 1000;
		const tick = () => {
			const left = (deadline - Date.now()) / 1000;
			expiry.hidden = false;
			expiry.textContent = left > 0 ? "The code expires in " + mmss(left) + "."
				: "The code has expired; checking with GitHub\u2026";
		};
		const waiting = () => {
			if (status.dataset.state !== "pending" || status.dataset.retrying)
				setStatus("pending", "Waiting for you to approve on GitHub\u2026");
			delete status.dataset.retrying;
		};
		waiting();
		tick();
		countdown = setInterval(tick, 1000);

		// GitHub is asked at most once per interval; asking earlier only
		// gets "pending" again, so wait the interval before the first poll.
		let next = Math.max(1, flow.interval || 5);
		await sleep(next * 1000 + 200, signal);
		let last;
		try {
			last = await poll({
				fn: (sig) => api.post("/api/auth/github/device/poll", { flow_id: flow.flow_id },
					{ toast: false, signal: sig }),
				interval: (r) => {
					if (r) {
						const wait = r.retry_after > 0 ? r.retry_after : (r.interval || next);
						next = Math.max(1, r.interval || next);
						return Math.max(1, wait) * 1000 + 200;
					}
					return next * 1000;
				},
				until: (r) => r.status !== "pending",
				onResult: (r) => {
					if (r.status === "pending")
						waiting();
				},
				onError: (err) => {
					if (!retryable(err))
						return false;
					setStatus("pending", "Still waiting \u2014 ", err.message, " (retrying)");
					status.dataset.retrying = "true";
					return true;
				},
				maxInterval: 15000,
				signal,
			});
		} catch (err) {
			if (err.name === "AbortError")
				return;
			ended("error", err.status === 404
				? "This sign-in is no longer known to the server. Start again."
				: err.message);
			return;
		}
		if (!last || signal.aborted)
			return;
		clearInterval(countdown);
		expiry.hidden = true;
		if (last.status === "complete") {
			const login = last.user && last.user.login;
			setStatus("complete", login ? `Signed in as ${login}.` : "Signed in.");
			d.body.querySelector(".device-steps")?.setAttribute("data-ended", "true");
			const s = await refreshSession();
			if (purpose !== "signin")
				toastSuccess(login ? `GitHub connected as ${login}` : "GitHub connected");
			d.close();
			onComplete?.(s, last);
			return;
		}
		const fallback = {
			expired: "The code expired before it was entered. Start again.",
			denied: "The sign-in was cancelled on GitHub.",
		};
		ended(last.status in fallback ? last.status : "error",
			last.message || fallback[last.status] || "The sign-in failed. Start again.");
	}

	if (purpose === "relogin") {
		cancel.textContent = "Not now";
		go.hidden = false;
		go.setAttribute("autofocus", "");
		replaceChildren(d.body,
			reloginNote(),
			el("p", { class: "muted small" },
				"You will get a one-time code to enter on GitHub. Your projects stay as they are."));
		d.open();
	} else {
		d.open();
		begin();
	}
	return d;
}
