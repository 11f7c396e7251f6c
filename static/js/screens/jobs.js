// screens/jobs.js - run a job (a command in a container, or an echo job),
// list recent jobs, follow one's output.
//
// #/jobs shows the forms and the list; #/jobs/<id> also opens that job's
// output, streamed into a terminal-like <pre> (terminal.js: text only,
// stdout/stderr/system apart, bounded) as the worker writes it; its "Full
// log" (#job-full-log) opens #/log/<id>, every line in the log view.
//
// The container form (#container-form) is built only for those the server
// lets run the "container" kind: the local user, and administrators in cloud
// mode (auth.js canRunContainers). Everyone else never sees it.

import { api } from "../api.js";
import { canRunContainers } from "../auth.js";
import { ago, duration, el, replaceChildren } from "../dom.js";
import { statePill } from "../pill.js";
import { followJobOutput, poll, retryable } from "../poll.js";
import { terminal } from "../terminal.js";
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

const SUMMARY_MAX = 80;

function clip(text, max) {
	return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
}

function summary(job) {
	const a = job.args || {};
	const parts = [job.kind];
	if (Array.isArray(a.command))
		parts.push(clip(a.command.map(String).join(" "), SUMMARY_MAX));
	if (Array.isArray(a.secrets) && a.secrets.length)
		parts.push(a.secrets.length === 1 ? "1 credential" : `${a.secrets.length} credentials`);
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

const CRED_LABELS = {
	anthropic_api_key: "Anthropic API key",
	github_pat: "GitHub personal access token",
	github_token: "GitHub token (from sign-in)",
	claude_credential: "Claude credential",
};
// Kept by anyon for its own use, never handed to a container.
const NOT_FOR_CONTAINERS = new Set(["github_refresh_token"]);

const SPLIT_HINTS = {
	shell: "Runs as sh -c \u201cyour text\u201d: quotes, pipes, && and variables work as in a shell. "
		+ "Several lines are one script.",
	lines: "One argument per line, taken as written: no quotes, no variables, no globbing. "
		+ "The first line is the program; empty lines at the end are ignored.",
};

// The command's argv from the textarea, split as the hint says.
export function splitCommand(mode, text) {
	text = text.replace(/\r\n?/g, "\n");
	if (mode === "lines") {
		const lines = text.split("\n");
		while (lines.length && lines[lines.length - 1] === "")
			lines.pop();
		return lines;
	}
	text = text.replace(/\n+$/, "");
	return text.trim() === "" ? [] : ["sh", "-c", text];
}

// The container form: returns its element. onCreated(job) after a 201.
// The credentials to hand in are the ones stored (GET /api/secrets).
function containerForm(onCreated, signal) {
	const split = el("select", { id: "container-split", name: "split", "aria-describedby": "container-command-hint" },
		el("option", { value: "shell" }, "Shell command (sh -c)"),
		el("option", { value: "lines" }, "One argument per line"));
	const command = el("textarea", {
		id: "container-command", name: "command", rows: 3, spellcheck: "false", autocomplete: "off",
		"aria-describedby": "container-command-hint container-argv",
	});
	command.value = "echo hello from $(hostname); uname -a";
	const hint = el("p", { id: "container-command-hint", class: "hint" });
	const argv = el("p", { id: "container-argv", class: "hint mono argv-preview", "aria-live": "polite" });
	const secretsBox = el("div", { id: "container-secrets", class: "secret-choices", role: "group",
		"aria-labelledby": "container-secrets-label" },
		el("p", { class: "hint" }, "Loading your credentials\u2026"));
	const submit = el("button", { id: "container-submit", class: "btn btn-primary", type: "submit" }, "Run in container");

	const form = el("form", { id: "container-form", class: "form", novalidate: true,
		"aria-labelledby": "container-form-title" },
		el("h2", { id: "container-form-title", text: "Run a command in a container" }),
		el("p", { class: "muted small" },
			"Runs in the agent image as an unprivileged user, with your output live below. "
			+ "Credentials you tick are handed in as files under /run/anyon/secrets, "
			+ "never as environment variables, and are masked in the output."),
		el("div", { class: "field" },
			el("label", { for: "container-split" }, "How to read the command"),
			split),
		el("div", { class: "field" },
			el("label", { for: "container-command" }, "Command"),
			command, hint, argv),
		el("div", { class: "field" },
			el("span", { id: "container-secrets-label", class: "label" }, "Credentials to hand in"),
			secretsBox),
		el("div", { class: "form-actions" }, submit));

	function preview() {
		hint.textContent = SPLIT_HINTS[split.value];
		const a = splitCommand(split.value, command.value);
		argv.textContent = a.length ? "argv: " + clip(JSON.stringify(a), 400) : "argv: (empty)";
	}
	split.addEventListener("change", preview);
	command.addEventListener("input", () => {
		command.removeAttribute("aria-invalid");
		preview();
	});
	preview();

	function checkboxes() {
		return [...secretsBox.querySelectorAll('input[type="checkbox"]')];
	}

	(async () => {
		let secrets;
		try {
			const r = await api.get("/api/secrets", { toast: false, signal });
			secrets = ((r && r.secrets) || []).filter((x) => !NOT_FOR_CONTAINERS.has(x.kind));
		} catch (err) {
			if (err.name === "AbortError")
				return;
			replaceChildren(secretsBox, el("p", { class: "hint error-text", role: "alert" },
				"Could not load your credentials: " + err.message));
			return;
		}
		if (!secrets.length) {
			replaceChildren(secretsBox, el("p", { id: "container-secrets-none", class: "hint" },
				"No credentials stored. Add one in ", el("a", { href: "#/settings" }, "Settings"),
				" to hand it to a command."));
			return;
		}
		replaceChildren(secretsBox, secrets.map((x) => {
			const id = "container-secret-" + x.kind;
			const box = el("input", { id, type: "checkbox", name: "secrets", value: x.kind });
			box.addEventListener("change", () => secretsBox.removeAttribute("aria-invalid"));
			return el("label", { class: "check", for: id }, box,
				el("span", {}, CRED_LABELS[x.kind] || x.kind),
				x.invalid ? el("span", { class: "cred-invalid" }, "refused") : null);
		}));
	})();

	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		command.removeAttribute("aria-invalid");
		secretsBox.removeAttribute("aria-invalid");
		const args = {
			command: splitCommand(split.value, command.value),
			secrets: checkboxes().filter((b) => b.checked).map((b) => b.value),
		};
		submit.disabled = true;
		submit.textContent = "Starting\u2026";
		try {
			const { job } = await api.post("/api/jobs", { kind: "container", args }, { signal });
			onCreated(job);
		} catch (err) {
			// api.js has shown the message; point at the field it names.
			const m = err.code === "invalid_field" && /^args\.(\w+)/.exec(err.message);
			if (m && m[1] === "secrets") {
				secretsBox.setAttribute("aria-invalid", "true");
				(checkboxes()[0] || command).focus();
			} else if (m && m[1] === "command") {
				command.setAttribute("aria-invalid", "true");
				command.focus();
			}
		} finally {
			submit.disabled = false;
			submit.textContent = "Run in container";
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

// What the job's container did, when the job reply says (kind "container").
// Reads the fields leniently: {id, exit_code|exit_status, oom|oom_killed}.
function containerFacts(c) {
	if (!c || typeof c !== "object")
		return null;
	const exit = c.exit_code ?? c.exit_status ?? null;
	const oom = c.oom ?? c.oom_killed ?? c.oomkilled ?? false;
	return {
		id: typeof c.id === "string" ? c.id.slice(0, 12) : null,
		exit: typeof exit === "number" ? exit : null,
		oom: oom === true,
	};
}

// The output panel for one job.
function jobDetail(id, signal, list) {
	const panel = el("div", { class: "job-detail-body", dataset: { jobId: id } });
	const state = statePill("loading", { id: "job-state", "aria-live": "polite" });
	const exitCode = el("span", { id: "job-exit-code", class: "exit-code", hidden: true });
	const oom = el("span", { id: "job-oom", class: "pill", dataset: { state: "failed" }, hidden: true,
		title: "The container ran out of memory and the kernel killed it" }, "out of memory");
	const cancel = el("button", { id: "job-cancel", class: "btn btn-danger", type: "button", hidden: true }, "Cancel");
	const meta = el("p", { class: "muted small job-meta" });
	const containerLine = el("p", { id: "job-container", class: "muted small job-container", hidden: true });
	const term = terminal({ id: "job-output", label: `Output of job ${id}` });
	const legend = el("p", { class: "terminal-legend small", "aria-hidden": "true" },
		el("span", { class: "legend-stdout" }, "stdout"),
		el("span", { class: "legend-stderr" }, "stderr"),
		el("span", { class: "legend-system" }, "anyon's notes"));

	let job = null;
	let cancelling = false;

	replaceChildren(panel,
		el("div", { class: "detail-head" },
			el("h2", { class: "detail-title" }, `Job #${id}`),
			state, exitCode, oom,
			el("span", { class: "spacer" }),
			el("a", { id: "job-full-log", class: "btn btn-sm", href: `#/log/${id}`,
				title: "Every line of the output, in the log view" }, "Full log"),
			cancel),
		meta,
		containerLine,
		term.element,
		legend);

	function showState(s) {
		state.textContent = s;
		state.dataset.state = s;
		cancel.hidden = !ACTIVE.has(s);
		cancel.disabled = cancelling || !!(job && job.cancel_requested);
		cancel.textContent = cancel.disabled ? "Cancelling\u2026" : "Cancel";
	}

	function showExit(code) {
		if (code === null || code === undefined)
			return;
		exitCode.hidden = false;
		exitCode.textContent = `exit ${code}`;
		exitCode.dataset.ok = String(code === 0);
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
		const c = containerFacts(job.container);
		if (c) {
			const words = ["Container"];
			if (c.id)
				words.push(c.id);
			if (c.exit !== null)
				words.push(`exited with status ${c.exit}`);
			else if (ACTIVE.has(job.state))
				words.push("running");
			if (c.oom)
				words.push("(out of memory)");
			containerLine.hidden = false;
			containerLine.textContent = words.join(" ");
			oom.hidden = !c.oom;
		}
		showExit(job.exit_code);
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
			onChunks: (chunks) => term.write(chunks),
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
		showExit(final.exit_code);
		term.finish("(no output)");
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

	const created = (job) => {
		list.upsert(job);
		location.hash = `#/jobs/${job.id}`;
	};
	const form = jobForm(created);
	const cform = !noUser && canRunContainers(session) ? containerForm(created, signal) : null;

	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "jobs-title" },
			el("header", { class: "screen-head" },
				el("h1", { id: "jobs-title", text: "Jobs" }),
				el("p", { class: "muted" }, "Work the worker runs for you, with its output live.")),
			noUser ? el("div", { class: "card notice" }, "Sign in to run jobs.") : null,
			el("div", { class: "jobs-grid" },
				el("div", { class: "jobs-side" },
					cform ? el("section", { class: "card" }, cform) : null,
					el("section", { class: "card" }, form),
					el("section", { class: "card", "aria-labelledby": "job-list-title" },
						el("h2", { id: "job-list-title", text: "Recent jobs" }),
						list.element)),
				detailCard)));

	open(params[0] || null);
	return { update: (p) => open(p[0] || null) };
}
