// screens/jobs.js - run an echo job, list recent jobs, follow one's output.
//
// #/jobs shows the form and the list; #/jobs/<id> also opens that job's
// output, streamed into a terminal-like <pre> as the worker writes it.

import { api } from "../api.js";
import { ago, duration, el, replaceChildren } from "../dom.js";
import { followJobOutput, poll, retryable } from "../poll.js";
import { toastError, toastInfo } from "../toast.js";

const LIST_LIMIT = 20;
const ACTIVE = new Set(["queued", "running"]);
// Which field an "invalid_field" message is about ("args.delay_ms must ...").
const FIELD_OF_ARG = {
	lines: "job-lines",
	delay_ms: "job-delay",
	exit_code: "job-exit",
	stream: "job-stream",
};

function statePill(state, attrs = {}) {
	return el("span", { class: "pill", dataset: { state }, ...attrs }, state);
}

function summary(job) {
	const a = job.args || {};
	const parts = [job.kind];
	if (Array.isArray(a.lines))
		parts.push(a.lines.length === 1 ? "1 line" : `${a.lines.length} lines`);
	if (a.delay_ms)
		parts.push(`${a.delay_ms} ms`);
	return parts.join(" \u00b7 ");
}

// The form: returns its element. onCreated(job) after a 201.
function jobForm(onCreated) {
	const lines = el("textarea", {
		id: "job-lines", name: "lines", rows: 4, spellcheck: "false",
		"aria-describedby": "job-lines-hint",
	});
	lines.value = "hello\nfrom anyon";
	const delay = el("input", {
		id: "job-delay", name: "delay_ms", type: "number", inputmode: "numeric",
		min: 0, step: 100, value: "300", "aria-describedby": "job-delay-hint",
	});
	const exit = el("input", {
		id: "job-exit", name: "exit_code", type: "number", inputmode: "numeric",
		min: 0, max: 255, value: "0",
	});
	const stream = el("select", { id: "job-stream", name: "stream" },
		el("option", { value: "stdout" }, "stdout"),
		el("option", { value: "stderr" }, "stderr"));
	const submit = el("button", { id: "job-submit", class: "btn btn-primary", type: "submit" }, "Run job");

	// The server checks the values and explains; the browser does not second-guess.
	const form = el("form", { id: "job-form", class: "form", novalidate: true, "aria-labelledby": "job-form-title" },
		el("h2", { id: "job-form-title", text: "Run an echo job" }),
		el("p", { class: "muted small" },
			"The worker prints each line, pausing between them. Handy for trying the pipeline end to end."),
		el("div", { class: "field" },
			el("label", { for: "job-lines" }, "Lines"),
			lines,
			el("p", { id: "job-lines-hint", class: "hint" }, "One line of output per line.")),
		el("div", { class: "field-row" },
			el("div", { class: "field" },
				el("label", { for: "job-delay" }, "Delay (ms)"),
				delay,
				el("p", { id: "job-delay-hint", class: "hint" }, "0\u201310000")),
			el("div", { class: "field" },
				el("label", { for: "job-exit" }, "Exit code"),
				exit),
			el("div", { class: "field" },
				el("label", { for: "job-stream" }, "Stream"),
				stream)),
		el("div", { class: "form-actions" }, submit));

	const number = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
	for (const f of [lines, delay, exit, stream])
		f.addEventListener("input", () => f.removeAttribute("aria-invalid"));

	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const text = lines.value.replace(/\r\n/g, "\n").replace(/\n$/, "");
		const args = {
			lines: text === "" ? [] : text.split("\n"),
			delay_ms: number(delay),
			exit_code: number(exit),
			stream: stream.value,
		};
		for (const f of [lines, delay, exit, stream])
			f.removeAttribute("aria-invalid");
		submit.disabled = true;
		submit.textContent = "Starting\u2026";
		try {
			const { job } = await api.post("/api/jobs", { kind: "echo", args });
			onCreated(job);
		} catch (err) {
			// api.js has shown the message; point at the field it names.
			const m = err.code === "invalid_field" && /^args\.(\w+)/.exec(err.message);
			const id = m && FIELD_OF_ARG[m[1]];
			if (id) {
				const f = document.getElementById(id);
				f.setAttribute("aria-invalid", "true");
				f.focus();
			}
		} finally {
			submit.disabled = false;
			submit.textContent = "Run job";
		}
	});
	return form;
}

// The list of recent jobs, refreshed while anything in it is active.
// With no signed-in user it stays empty and asks nothing.
function jobList(signal, enabled) {
	const list = el("ul", { id: "job-list", class: "job-list", "aria-label": "Recent jobs" });
	const status = el("p", { class: "muted small list-status" }, "Loading\u2026");
	let selected = null;
	let jobs = [];
	let loaded = false;
	let kick = null; // wakes the poll early

	function draw() {
		const focusedId = document.activeElement?.closest?.(".job-item")?.dataset.jobId;
		const items = jobs.map((j) => {
			const a = el("a", {
				class: "job-item", href: `#/jobs/${j.id}`,
				dataset: { jobId: String(j.id), state: j.state },
				"aria-current": String(j.id) === selected ? "true" : null,
			},
				el("span", { class: "job-item-main" },
					el("span", { class: "job-id" }, `#${j.id}`),
					el("span", { class: "job-summary" }, summary(j))),
				el("span", { class: "job-item-side" },
					statePill(j.state),
					el("time", { class: "job-time", datetime: new Date(j.created_at * 1000).toISOString() },
						ago(j.created_at))));
			return el("li", {}, a);
		});
		replaceChildren(list, items);
		if (focusedId)
			list.querySelector(`[data-job-id="${CSS.escape(focusedId)}"]`)?.focus();
		status.textContent = !enabled ? "Sign in to see your jobs."
			: !loaded && jobs.length === 0 ? "Loading\u2026"
			: jobs.length === 0 ? "No jobs yet. Run one above."
			: jobs.length >= LIST_LIMIT ? `The ${LIST_LIMIT} most recent jobs.` : "";
		status.hidden = status.textContent === "";
	}

	if (enabled) {
		poll({
			fn: (sig) => api.get(`/api/jobs?limit=${LIST_LIMIT}`, { toast: false, signal: sig }),
			interval: () => (jobs.some((j) => ACTIVE.has(j.state)) ? 1500 : 10000),
			onResult: (r) => {
				// A job created while this answer was on its way is newer
				// than anything in it: keep it.
				const newest = r.jobs.length ? r.jobs[0].id : 0;
				jobs = [...jobs.filter((j) => j.id > newest), ...r.jobs].slice(0, LIST_LIMIT);
				loaded = true;
				draw();
			},
			onError: (err, failures) => {
				if (failures === 1)
					toastError("Could not load jobs: " + err.message, { code: err.code });
				status.hidden = false;
				status.textContent = retryable(err) ? "Could not load jobs; retrying\u2026"
					: "Could not load jobs: " + err.message;
				return retryable(err);
			},
			signal,
			wake: (fn) => { kick = fn; },
		}).catch(() => {});
	}

	return {
		element: el("div", {}, list, status),
		select(id) {
			selected = id;
			draw();
		},
		// Puts a job in (new or changed) and polls again soon.
		upsert(job) {
			const i = jobs.findIndex((j) => j.id === job.id);
			if (i >= 0)
				jobs[i] = job;
			else
				jobs = [job, ...jobs].slice(0, LIST_LIMIT);
			draw();
			kick?.();
		},
	};
}

// The output panel for one job.
function jobDetail(id, signal, list) {
	const panel = el("div", { class: "job-detail-body", dataset: { jobId: id } });
	const state = statePill("loading", { id: "job-state", "aria-live": "polite" });
	const exitCode = el("span", { id: "job-exit-code", class: "exit-code", hidden: true });
	const cancel = el("button", { id: "job-cancel", class: "btn btn-danger", type: "button", hidden: true }, "Cancel");
	const meta = el("p", { class: "muted small job-meta" });
	const out = el("pre", {
		id: "job-output", class: "terminal", tabindex: "0", role: "log",
		"aria-label": `Output of job ${id}`, dataset: { empty: "true" },
	});
	const placeholder = el("span", { class: "terminal-placeholder" }, "Waiting for output\u2026");
	out.append(placeholder);

	let job = null;
	let lastStream = null;
	let lastSpan = null;
	let cancelling = false;

	replaceChildren(panel,
		el("div", { class: "detail-head" },
			el("h2", { class: "detail-title" }, `Job #${id}`),
			state, exitCode,
			el("span", { class: "spacer" }),
			cancel),
		meta,
		out);

	function showState(s) {
		state.textContent = s;
		state.dataset.state = s;
		cancel.hidden = !ACTIVE.has(s);
		cancel.disabled = cancelling || !!(job && job.cancel_requested);
		cancel.textContent = cancel.disabled ? "Cancelling\u2026" : "Cancel";
	}

	function showMeta() {
		if (!job)
			return;
		const bits = [summary(job), "created " + ago(job.created_at)];
		if (job.started_at && job.finished_at)
			bits.push("ran " + duration(job.finished_at - job.started_at));
		else if (job.started_at)
			bits.push("started " + ago(job.started_at));
		if (job.attempts > 1)
			bits.push(`attempt ${job.attempts}`);
		if (job.error)
			bits.push(job.error);
		meta.textContent = bits.join(" \u00b7 ");
	}

	function append(chunk) {
		if (out.dataset.empty === "true") {
			placeholder.remove();
			out.dataset.empty = "false";
		}
		const atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 24;
		if (chunk.stream === lastStream && lastSpan) {
			lastSpan.append(chunk.data);
		} else {
			lastSpan = el("span", { class: "out-" + chunk.stream }, chunk.data);
			lastStream = chunk.stream;
			out.append(lastSpan);
		}
		if (atBottom)
			out.scrollTop = out.scrollHeight;
	}

	async function refreshJob() {
		try {
			const r = await api.get(`/api/jobs/${encodeURIComponent(id)}`, { toast: false, signal });
			job = r.job;
			showMeta();
			list.upsert(job);
			return job;
		} catch (err) {
			if (err.name !== "AbortError" && err.status === 404)
				throw err;
			return null;
		}
	}

	cancel.addEventListener("click", async () => {
		cancelling = true;
		showState(state.dataset.state);
		try {
			const r = await api.post(`/api/jobs/${encodeURIComponent(id)}/cancel`, undefined, { toast: false, signal });
			job = r.job;
			list.upsert(job);
			toastInfo(`Cancelling job #${id}\u2026`);
		} catch (err) {
			if (err.name === "AbortError")
				return;
			if (err.code !== "job_finished")
				toastError(err.message, { code: err.code });
			cancelling = false;
		}
		showState(state.dataset.state);
	});

	(async () => {
		try {
			await refreshJob();
		} catch (err) {
			replaceChildren(panel, el("div", { class: "empty" },
				el("h2", { text: `Job #${id}` }),
				el("p", { class: "muted" }, err.message)));
			return;
		}
		if (signal.aborted)
			return;
		showState(job ? job.state : "unknown");
		const final = await followJobOutput(id, {
			onChunk: append,
			onState: (s) => {
				showState(s);
				if (job && s !== job.state)
					refreshJob();
			},
			onError: (err, failures) => {
				// A client error ends the stream (shown below); others retry.
				if (retryable(err) && failures === 1)
					toastError("Lost the output stream: " + err.message + " (retrying)", { code: err.code });
				return retryable(err);
			},
			signal,
		}).catch((err) => {
			toastError(err.message, { code: err.code });
			return undefined;
		});
		if (!final)
			return;
		cancelling = false;
		showState(final.state);
		if (final.exit_code !== null && final.exit_code !== undefined) {
			exitCode.hidden = false;
			exitCode.textContent = `exit ${final.exit_code}`;
			exitCode.dataset.ok = String(final.exit_code === 0);
		}
		if (out.dataset.empty === "true")
			placeholder.textContent = "(no output)";
		await refreshJob();
	})();

	return panel;
}

export function render(main, { session, params, signal }) {
	const noUser = !session || !session.user;
	const list = jobList(signal, !noUser);
	const detailCard = el("section", { class: "card job-detail", id: "job-detail", "aria-label": "Job output" });
	let detailController = null;
	let openId = null;

	signal.addEventListener("abort", () => detailController?.abort(), { once: true });

	function open(id) {
		if (id === openId)
			return;
		openId = id;
		detailController?.abort();
		detailController = null;
		list.select(id);
		// On a narrow screen an open job comes first (see app.css).
		detailCard.dataset.open = String(!!id);
		if (!id) {
			replaceChildren(detailCard, el("div", { class: "empty" },
				el("div", { class: "empty-terminal", "aria-hidden": "true" }, "$ _"),
				el("h2", { text: "No job selected" }),
				el("p", { class: "muted" }, "Run a job, or pick one from the list to watch its output.")));
			return;
		}
		detailController = new AbortController();
		replaceChildren(detailCard, jobDetail(id, detailController.signal, list));
	}

	const form = jobForm((job) => {
		list.upsert(job);
		location.hash = `#/jobs/${job.id}`;
	});

	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "jobs-title" },
			el("header", { class: "screen-head" },
				el("h1", { id: "jobs-title", text: "Jobs" }),
				el("p", { class: "muted" }, "Work the worker runs for you, with its output live.")),
			noUser ? el("div", { class: "card notice" }, "Sign in to run jobs.") : null,
			el("div", { class: "jobs-grid" },
				el("div", { class: "jobs-side" },
					el("section", { class: "card" }, form),
					el("section", { class: "card", "aria-labelledby": "job-list-title" },
						el("h2", { id: "job-list-title", text: "Recent jobs" }),
						list.element)),
				detailCard)));

	open(params[0] || null);
	return { update: (p) => open(p[0] || null) };
}
