// attempt.js - one attempt, as the task screen shows it: its state, its
// runs (tabs), each run's live conversation and raw log, the diff, Stop,
// a follow-up box and "Create pull request".
//
//   const panel = attemptPanel({ attempt, executors, signal });
//   host.append(panel.element);
//   panel.update(attempt);        // a newer GET /api/attempts/{id}
//   panel.jobOutput(jobId);       // the feed said job.output (or job.finished)
//   panel.diffChanged();          // the feed said attempt.diff
//
// The attempt is the API's A (docs: /work/notes/spec-attempts.md): {id,
// executor, branch, base_branch, state, error, error_code, runs: [{id, seq,
// job_id, state, exit_code, prompt, created_at, finished_at}], diff: null |
// {files, additions, deletions}, pr: null | {url, number, state (pending, open, closed, merged,
// failed), error}, ...}.
//
// Nothing here polls on a timer. A run's conversation
// (GET /api/attempts/{id}/conversation?run=SEQ&after=OFFSET) and raw log
// (GET /api/jobs/{job}/output?after=SEQ) are read page after page while
// the answer says there is more, then wait: the task screen passes on the
// change feed's job.output and job.finished events of the run's job
// (jobOutput), and attempt.* events (update), and only then is the next
// page asked for. A run that is over is read to its end once.
//
// Ids (for people and tests): #attempt-state, #attempt-branch,
// #attempt-error (with #attempt-connect when the credential is missing or
// refused), #attempt-stop, #attempt-runs [data-run=SEQ], the tabs
// #attempt-tab-conversation|log|diff and their panels
// #attempt-conversation, #attempt-log (logview.js), #attempt-diff
// (diffview.js), #followup-form (#followup-prompt, #followup-submit,
// #followup-error), #attempt-pr (#pr-form: #pr-title, #pr-body,
// #pr-submit; or #attempt-pr-link and #attempt-pr-state).

import { api } from "./api.js";
import { conversationView } from "./conversation.js";
import { diffView } from "./diffview.js";
import { ago, duration, el, replaceChildren } from "./dom.js";
import { clearErrors, field, fieldError } from "./form.js";
import { logView } from "./logview.js";
import { setPill, statePill } from "./pill.js";
import { fullPage } from "./poll.js";
import { toastError, toastInfo } from "./toast.js";

const ACTIVE = new Set(["queued", "running"]);
const RETRY_MS = 3000;
// Where Claude is connected: settings' Claude card (screens/settings.js
// scrolls to it for #/settings/credentials as for #/settings/claude).
export const CREDENTIALS_HREF = "#/settings/credentials";
const CREDENTIAL_CODES = new Set(["credential_missing", "credential_invalid"]);

// "Connect Claude": the way to the Claude card; "Sign in to Claude again"
// when the credential was refused (invalid).
export function connectLink(id, invalid = false) {
	return el("a", { id, class: "btn btn-primary btn-sm connect-link", href: CREDENTIALS_HREF },
		invalid ? "Sign in to Claude again" : "Connect Claude");
}

// A reader of pages: step() -> "more" (read again at once), "wait" (until
// kick()) or "done". A failure waits RETRY_MS or a kick. Stops with signal.
function reader(step, signal) {
	let kicked = false;
	let wake = null;
	// Waits ms (0: until a kick), or until a kick or the end.
	const sleep = (ms) => new Promise((resolve) => {
		const t = ms ? setTimeout(() => { wake = null; resolve(); }, ms) : 0;
		wake = () => { clearTimeout(t); wake = null; resolve(); };
	});
	signal.addEventListener("abort", () => wake?.(), { once: true });
	(async () => {
		for (;;) {
			if (signal.aborted)
				return;
			kicked = false;
			let r;
			try {
				r = await step();
			} catch (err) {
				if (err.name === "AbortError" || signal.aborted)
					return;
				r = "error";
			}
			if (r === "done" || signal.aborted)
				return;
			if (r === "more")
				continue;
			if (!kicked)
				await sleep(r === "error" ? RETRY_MS : 0);
		}
	})();
	return {
		kick() {
			kicked = true;
			wake?.();
		},
	};
}

// One run's two views and their readers.
function runViews(attemptId, run, signal) {
	const conv = conversationView({ id: "attempt-conversation" });
	const log = logView({ id: "attempt-log", label: `Raw log of run ${run.seq}` });
	let convAfter = 0;
	let logAfter = 0;
	let convDone = false;
	let logDone = false;
	let jobId = run.job_id;
	let readers = { conv: null, log: null };

	const aid = encodeURIComponent(attemptId);
	function convStep() {
		return api.get(`/api/attempts/${aid}/conversation?run=${run.seq}&after=${convAfter}`,
			{ toast: false, signal }).then((r) => {
			conv.append(Array.isArray(r.entries) ? r.entries : []);
			if (typeof r.next === "number")
				convAfter = r.next;
			if (r.done) {
				convDone = true;
				conv.finish("(the agent said nothing)");
				return "done";
			}
			return r.more ? "more" : "wait";
		}, (err) => {
			if (err.status === 404) {
				convDone = true;
				conv.finish("(no conversation for this run)");
				return "done";
			}
			throw err;
		});
	}
	function logStep() {
		if (!jobId) {
			log.finish("(this run's output is no longer kept)");
			logDone = true;
			return Promise.resolve("done");
		}
		return api.get(`/api/jobs/${encodeURIComponent(jobId)}/output?after=${logAfter}`,
			{ toast: false, signal }).then((r) => {
			log.write(r.chunks);
			if (typeof r.next_after === "number")
				logAfter = r.next_after;
			if (r.done) {
				logDone = true;
				log.finish("(no output)");
				return "done";
			}
			// The API pages by size; a page at its limit, or a finished
			// job not yet done, has more (an empty one of a finished job
			// is the end, whatever it says).
			if (!ACTIVE.has(r.state) && !r.chunks.length) {
				logDone = true;
				log.finish("(no output)");
				return "done";
			}
			return fullPage(r) || !ACTIVE.has(r.state) ? "more" : "wait";
		}, (err) => {
			if (err.status === 404) {
				logDone = true;
				log.finish("(this run's output is no longer kept)");
				return "done";
			}
			throw err;
		});
	}

	return {
		conv, log,
		get jobId() { return jobId; },
		// Starts reading what is shown (lazily: a tab never opened is not read).
		start(which) {
			if (which === "conversation" && !readers.conv)
				readers.conv = reader(convStep, signal);
			if (which === "log" && !readers.log)
				readers.log = reader(logStep, signal);
		},
		kick(newRun) {
			if (newRun && newRun.job_id && !jobId)
				jobId = newRun.job_id;
			if (!convDone)
				readers.conv?.kick();
			if (!logDone)
				readers.log?.kick();
		},
	};
}

function runLabel(r) {
	return r.seq === 1 ? "Run 1" : `Run ${r.seq} (follow-up)`;
}

export function attemptPanel({ attempt, executors = [], signal }) {
	let a = attempt;
	let tab = "conversation";
	let seq = null;            // the run shown
	let views = null;          // its runViews
	let viewsCtl = null;       // aborts its readers
	let diffLoaded = false;
	let diffCtl = null;

	const labelOf = (name) => executors.find((x) => x.name === name)?.label || name;

	const state = statePill(a.state, { id: "attempt-state", "aria-live": "polite" });
	const branch = el("span", { id: "attempt-branch", class: "branch mono" });
	const facts = el("p", { id: "attempt-facts", class: "muted small" });
	const error = el("div", { id: "attempt-error", class: "callout callout-warn", role: "alert", hidden: true });
	const stop = el("button", { id: "attempt-stop", class: "btn btn-danger btn-sm", type: "button", hidden: true },
		"Stop");
	const runTabs = el("div", { id: "attempt-runs", class: "segmented run-tabs", role: "group",
		"aria-label": "Runs" });
	const tabButtons = {};
	const panels = {};
	for (const [name, label] of [["conversation", "Conversation"], ["log", "Raw log"], ["diff", "Diff"]]) {
		tabButtons[name] = el("button", { id: "attempt-tab-" + name, class: "tab", type: "button", role: "tab",
			"aria-controls": "attempt-panel-" + name, dataset: { tab: name } }, label);
		panels[name] = el("div", { id: "attempt-panel-" + name, class: "tab-panel", role: "tabpanel",
			"aria-labelledby": "attempt-tab-" + name });
	}
	const tabs = el("div", { class: "tabs", role: "tablist", "aria-label": "Attempt views" },
		Object.values(tabButtons));

	// ---- follow-up ----
	const followPrompt = field({ id: "followup-prompt", label: "Follow-up",
		control: el("textarea", { rows: 3, spellcheck: "true", placeholder: "Tell the agent what to do next" }) });
	const followGeneral = el("p", { id: "followup-error", class: "callout callout-warn", role: "alert", hidden: true });
	const followSubmit = el("button", { id: "followup-submit", class: "btn btn-primary", type: "submit" }, "Send");
	const followForm = el("form", { id: "followup-form", class: "form followup-form", novalidate: true },
		followPrompt.node, followGeneral, el("div", { class: "form-actions" }, followSubmit));

	// ---- pull request ----
	const prBox = el("section", { id: "attempt-pr", class: "attempt-pr", "aria-label": "Pull request" });
	const prTitle = field({ id: "pr-title", label: "Title",
		control: el("input", { type: "text", autocomplete: "off", placeholder: "Default: the task's title" }) });
	const prBody = field({ id: "pr-body", label: "Description",
		control: el("textarea", { rows: 3, placeholder: "Default: the task's description" }) });
	const prGeneral = el("p", { id: "pr-error", class: "callout callout-warn", role: "alert", hidden: true });
	const prSubmit = el("button", { id: "pr-submit", class: "btn btn-primary", type: "submit" }, "Create pull request");
	const prForm = el("form", { id: "pr-form", class: "form", novalidate: true },
		el("details", { class: "pr-more" }, el("summary", { class: "small" }, "Title and description"),
			prTitle.node, prBody.node),
		prGeneral, el("div", { class: "form-actions" }, prSubmit));

	const element = el("div", { class: "attempt-panel", dataset: { attemptId: String(a.id) } },
		el("div", { class: "detail-head" },
			el("h2", { class: "detail-title", id: "attempt-title" }, `Attempt #${a.id}`),
			state, branch,
			el("span", { class: "spacer" }),
			stop),
		facts,
		error,
		runTabs,
		tabs,
		panels.conversation, panels.log, panels.diff,
		followForm,
		prBox);

	// ---- drawing ----

	function drawHead() {
		setPill(state, a.state);
		branch.textContent = a.branch || "";
		branch.title = a.base_branch ? `from ${a.base_branch}` : "";
		const bits = [labelOf(a.executor)];
		if (a.base_branch)
			bits.push("from " + a.base_branch);
		bits.push("created " + ago(a.created_at));
		if (a.diff)
			bits.push(`${a.diff.files} ${a.diff.files === 1 ? "file" : "files"} +${a.diff.additions} \u2212${a.diff.deletions}`);
		facts.textContent = bits.join(" \u00b7 ");
		stop.hidden = !ACTIVE.has(a.state);
		if (a.error || CREDENTIAL_CODES.has(a.error_code)) {
			error.hidden = false;
			replaceChildren(error,
				el("span", {}, a.error || "The attempt failed."),
				CREDENTIAL_CODES.has(a.error_code)
					? [" ", connectLink("attempt-connect", a.error_code === "credential_invalid")] : null);
			error.dataset.code = a.error_code || "";
		} else {
			error.hidden = true;
			error.replaceChildren();
		}
		const active = ACTIVE.has(a.state);
		followSubmit.disabled = active;
		followForm.dataset.busy = String(active);
		followPrompt.control.placeholder = active ? "Wait for the run to end to follow up"
			: "Tell the agent what to do next";
	}

	function drawRuns() {
		const runs = Array.isArray(a.runs) ? a.runs.slice().sort((x, y) => x.seq - y.seq) : [];
		replaceChildren(runTabs, runs.map((r) => el("button", {
			class: "btn btn-sm run-tab", type: "button", dataset: { run: String(r.seq), state: r.state },
			"aria-pressed": String(r.seq === seq),
			title: r.finished_at && r.created_at ? "ran " + duration(r.finished_at - r.created_at) : r.state,
		}, runLabel(r), " ", statePill(r.state))));
		runTabs.hidden = runs.length <= 1;
	}

	function drawPr() {
		const pr = a.pr || null;
		if (pr && pr.url) {
			const refresh = el("button", { id: "attempt-pr-refresh", class: "btn btn-sm", type: "button" }, "Refresh");
			refresh.addEventListener("click", async () => {
				refresh.disabled = true;
				try {
					const r = await api.post(`/api/attempts/${encodeURIComponent(a.id)}/pull-request/refresh`, null,
						{ signal });
					handle.update(r.attempt);
				} catch (err) {
					if (err.name !== "AbortError")
						refresh.disabled = false;
				}
			});
			replaceChildren(prBox,
				el("h3", {}, "Pull request"),
				el("p", { class: "pr-line" },
					el("a", { id: "attempt-pr-link", href: pr.url, target: "_blank", rel: "noopener noreferrer" },
						pr.number ? `#${pr.number}` : pr.url),
					" ", statePill(pr.state || "open", { id: "attempt-pr-state" }), " ", refresh));
			return;
		}
		if (pr && pr.state === "pending") {
			replaceChildren(prBox, el("h3", {}, "Pull request"),
				el("p", { id: "attempt-pr-pending", class: "muted" }, "Pushing the branch and opening the pull request\u2026"));
			return;
		}
		const canShip = !!(a.head_commit || a.diff) && !ACTIVE.has(a.state);
		prSubmit.disabled = !canShip;
		replaceChildren(prBox, el("h3", {}, "Pull request"),
			pr && pr.state === "failed" ? el("p", { id: "attempt-pr-failed", class: "callout callout-warn", role: "alert" },
				"The pull request was not made: ", pr.error || "unknown reason") : null,
			canShip ? null : el("p", { class: "muted small", id: "attempt-pr-none" },
				ACTIVE.has(a.state) ? "When the run ends, its work can go to a pull request."
					: "Nothing to ship: the agent changed nothing."),
			prForm);
	}

	function showTab(name) {
		tab = name;
		for (const [k, b] of Object.entries(tabButtons)) {
			b.setAttribute("aria-selected", String(k === name));
			b.tabIndex = k === name ? 0 : -1;
			panels[k].hidden = k !== name;
		}
		if (name === "diff")
			loadDiff();
		else
			views?.start(name);
	}

	function showRun(s) {
		if (s === seq && views)
			return;
		const run = (a.runs || []).find((r) => r.seq === s);
		if (!run)
			return;
		seq = s;
		viewsCtl?.abort();
		viewsCtl = new AbortController();
		signal.addEventListener("abort", () => viewsCtl.abort(), { once: true });
		views = runViews(a.id, run, viewsCtl.signal);
		replaceChildren(panels.conversation, views.conv.element);
		replaceChildren(panels.log, el("p", { class: "hint small" },
			run.job_id ? ["Everything the run printed, as job ", el("a", { href: `#/log/${run.job_id}` }, `#${run.job_id}`), "."]
				: "Everything the run printed."), views.log.element);
		drawRuns();
		showTab(tab);
	}

	async function loadDiff() {
		if (diffLoaded)
			return;
		diffLoaded = true;
		diffCtl?.abort();
		diffCtl = new AbortController();
		const sig = diffCtl.signal;
		signal.addEventListener("abort", () => diffCtl.abort(), { once: true });
		if (!panels.diff.firstChild)
			panels.diff.append(el("p", { class: "muted" }, "Loading the diff\u2026"));
		try {
			const d = await api.get(`/api/attempts/${encodeURIComponent(a.id)}/diff`, { toast: false, signal: sig });
			replaceChildren(panels.diff, diffView(d, { id: "attempt-diff" }));
		} catch (err) {
			if (err.name === "AbortError")
				return;
			if (err.status === 404) {
				replaceChildren(panels.diff, el("p", { id: "attempt-diff-none", class: "muted" },
					ACTIVE.has(a.state) ? "The diff comes when the run ends." : "No diff: nothing came back from this attempt."));
			} else {
				diffLoaded = false;
				replaceChildren(panels.diff, el("p", { class: "callout callout-warn", role: "alert" },
					"Could not load the diff: " + err.message));
			}
		}
	}

	// ---- actions ----

	stop.addEventListener("click", async () => {
		stop.disabled = true;
		try {
			const r = await api.post(`/api/attempts/${encodeURIComponent(a.id)}/stop`, undefined, { toast: false, signal });
			handle.update(r.attempt);
			toastInfo("Stopping\u2026");
		} catch (err) {
			if (err.name !== "AbortError" && err.status !== 409)
				toastError("Could not stop the attempt: " + err.message, { code: err.code });
		} finally {
			stop.disabled = false;
		}
	});

	followForm.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const fields = { prompt: followPrompt };
		clearErrors(fields, followGeneral);
		if (!followPrompt.control.value.trim()) {
			followPrompt.setError("Write what the agent should do next.");
			followPrompt.control.focus();
			return;
		}
		followSubmit.disabled = true;
		try {
			const r = await api.post(`/api/attempts/${encodeURIComponent(a.id)}/follow-up`,
				{ prompt: followPrompt.control.value }, { toast: false, signal });
			followPrompt.control.value = "";
			handle.update(r.attempt);
			const last = Math.max(...r.attempt.runs.map((x) => x.seq));
			showRun(last);
		} catch (err) {
			if (err.name === "AbortError")
				return;
			if (err.code === "no_session")
				err.message = "This attempt cannot be continued: the agent gave no session to resume.";
			fieldError(fields, err, followGeneral);
		} finally {
			followSubmit.disabled = ACTIVE.has(a.state);
		}
	});

	prForm.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const fields = { title: prTitle, body: prBody };
		clearErrors(fields, prGeneral);
		const body = {};
		if (prTitle.control.value.trim())
			body.title = prTitle.control.value.trim();
		if (prBody.control.value.trim())
			body.body = prBody.control.value;
		prSubmit.disabled = true;
		try {
			const r = await api.post(`/api/attempts/${encodeURIComponent(a.id)}/pull-request`, body,
				{ toast: false, signal });
			handle.update(r.attempt);
		} catch (err) {
			if (err.name === "AbortError")
				return;
			if (fieldError(fields, err, prGeneral) && !prForm.querySelector(".pr-more").open)
				prForm.querySelector(".pr-more").open = true;
		} finally {
			prSubmit.disabled = false;
		}
	});

	runTabs.addEventListener("click", (ev) => {
		const b = ev.target.closest("[data-run]");
		if (b)
			showRun(Number(b.dataset.run));
	});
	tabs.addEventListener("click", (ev) => {
		const b = ev.target.closest("[data-tab]");
		if (b)
			showTab(b.dataset.tab);
	});
	tabs.addEventListener("keydown", (ev) => {
		const names = Object.keys(tabButtons);
		const i = names.indexOf(tab);
		const j = ev.key === "ArrowRight" ? (i + 1) % names.length
			: ev.key === "ArrowLeft" ? (i + names.length - 1) % names.length : -1;
		if (j < 0)
			return;
		ev.preventDefault();
		showTab(names[j]);
		tabButtons[names[j]].focus();
	});

	const handle = {
		element,
		get attempt() { return a; },
		get runSeq() { return seq; },
		// The job whose output the shown run reads (for job.output events).
		get jobId() { return views?.jobId ?? null; },
		update(next) {
			if (!next || next.id !== a.id)
				return;
			const prevDiff = JSON.stringify(a.diff);
			const prevNewest = Math.max(0, ...(a.runs || []).map((r) => r.seq));
			a = next;
			drawHead();
			drawPr();
			const runs = a.runs || [];
			const newest = Math.max(0, ...runs.map((r) => r.seq));
			if (newest > prevNewest && (seq === prevNewest || !views)) {
				// A follow-up began while the last run was shown: show it.
				showRun(newest);
			} else {
				drawRuns();
				views?.kick(runs.find((r) => r.seq === seq));
			}
			if (JSON.stringify(a.diff) !== prevDiff)
				handle.diffChanged();
		},
		jobOutput(jobId) {
			if (views && String(views.jobId) === String(jobId))
				views.kick();
		},
		diffChanged() {
			diffLoaded = false;
			if (tab === "diff")
				loadDiff();
		},
	};

	drawHead();
	drawPr();
	const runs = a.runs || [];
	if (runs.length)
		showRun(Math.max(...runs.map((r) => r.seq)));
	else {
		replaceChildren(panels.conversation, el("p", { class: "muted" }, "No run yet."));
		showTab(tab);
	}
	return handle;
}
