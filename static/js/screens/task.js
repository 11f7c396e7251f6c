// screens/task.js - one task (#/task/<id>[/<attempt id>]): its title,
// description and status, its attempts, a "New attempt" form, and the
// selected attempt (attempt.js: runs, conversation, raw log, diff, Stop,
// follow-up, pull request). A card's title on the project board opens it.
//
// The list (#attempt-list, newest first) has one .attempt-item per attempt
// [data-attempt-id][data-state]: its state pill, executor (meta's label),
// branch and when it was made; it links to #/task/<id>/<attempt>, which
// shows that attempt without building the screen again. Without an
// attempt in the address the newest is shown.
//
// "New attempt" (#attempt-form): the executor (#attempt-executor, from GET
// /api/meta's executors with their labels, the project's default chosen),
// the prompt (#attempt-prompt; empty: the server's default, the task's
// title and description) and the base branch (#attempt-base-branch;
// empty: the project's). Errors sit next to the field the API names; a
// 409 credential_missing shows "Connect Claude" (#attempt-new-connect), a
// link to where credentials are set.
//
// Updates come from the change feed (store.js onEvents), never a timer of
// our own: attempt.* of this project reload the list and refetch the
// attempt named (GET /api/attempts/{id}); job.output and job.finished of
// the shown run's job read its next page; task.* of this task reload it
// (task.deleted: gone).

import { api } from "../api.js";
import { attemptPanel, connectLink } from "../attempt.js";
import { ago, el, replaceChildren } from "../dom.js";
import { clearErrors, field, fieldError } from "../form.js";
import { statePill } from "../pill.js";
import { executorChoices, getMeta, onEvents, statusWord } from "../store.js";
import { toastError } from "../toast.js";

const ID = /^[1-9][0-9]{0,18}$/;

function notFound(main, message) {
	replaceChildren(main,
		el("section", { class: "screen" },
			el("div", { class: "card empty", id: "task-missing" },
				el("h1", { text: "No such task" }),
				el("p", { class: "muted" }, message),
				el("p", {}, el("a", { href: "#/board" }, "Back to the board")))));
}

export function render(main, { params, signal }) {
	const taskId = params[0] || "";
	if (!ID.test(taskId)) {
		notFound(main, "That is not a task's address.");
		return null;
	}
	const tid = encodeURIComponent(taskId);
	let wanted = ID.test(params[1] || "") ? Number(params[1]) : null; // the attempt in the address
	let task = null;
	let project = null;
	let executors = [];
	let attempts = [];
	let panel = null;          // attemptPanel of the shown attempt
	let panelCtl = null;

	const back = el("a", { href: "#/board", id: "back-to-project" }, "\u2190 Board");
	const title = el("h1", { id: "task-heading" }, "Task");
	const status = statePill("", { id: "task-status" });
	const description = el("div", { id: "task-description", class: "task-description" });
	const list = el("ul", { id: "attempt-list", class: "attempt-list", "aria-label": "Attempts", "aria-busy": "true" });
	const listStatus = el("p", { class: "muted small list-status" }, "Loading\u2026");
	const detail = el("section", { id: "attempt-detail", class: "card attempt-detail", "aria-label": "Attempt" },
		el("div", { class: "empty" },
			el("h2", { text: "No attempt yet" }),
			el("p", { class: "muted" }, "Start one: the agent works on its own branch, in its own container.")));

	// ---- the New attempt form ----
	const execField = field({ id: "attempt-executor", label: "Executor", control: el("select", {}) });
	const promptField = field({ id: "attempt-prompt", label: "Prompt",
		control: el("textarea", { rows: 4, spellcheck: "true", placeholder: "Empty: the task\u2019s title and description" }),
		hint: "What the executor is given to do; for a script-like executor, the script itself." });
	const baseField = field({ id: "attempt-base-branch", label: "Base branch",
		control: el("input", { type: "text", autocomplete: "off", spellcheck: "false", class: "mono" }) });
	const general = el("div", { id: "attempt-new-error", class: "callout callout-warn", role: "alert", hidden: true });
	const submit = el("button", { id: "attempt-submit", class: "btn btn-primary", type: "submit", disabled: true },
		"Start attempt");
	const form = el("form", { id: "attempt-form", class: "form", novalidate: true, "aria-labelledby": "attempt-form-title" },
		el("h2", { id: "attempt-form-title" }, "New attempt"),
		execField.node, promptField.node, baseField.node, general,
		el("div", { class: "form-actions" }, submit));
	const fields = { executor: execField, prompt: promptField, base_branch: baseField };

	replaceChildren(main,
		el("section", { class: "screen", "aria-labelledby": "task-heading" },
			el("p", { class: "crumbs" }, back),
			el("header", { class: "screen-head screen-head-row" },
				el("div", { class: "task-head" }, title, status)),
			description,
			el("div", { class: "task-grid" },
				el("div", { class: "task-side" },
					el("section", { class: "card", "aria-labelledby": "attempts-title" },
						el("h2", { id: "attempts-title" }, "Attempts"),
						list, listStatus),
					el("section", { class: "card" }, form)),
				detail)));

	// ---- drawing ----

	function showTask() {
		title.textContent = task.title;
		document.title = task.title + " \u00b7 anyon";
		status.dataset.state = task.status;
		status.textContent = statusWord(task.status);
		description.textContent = task.description || "";
		description.hidden = !task.description;
		back.href = "#/project/" + task.project_id;
		back.textContent = "\u2190 " + (project ? project.name : "Project");
	}

	const labelOf = (name) => executors.find((x) => x.name === name)?.label || name;
	const shownId = () => (panel ? panel.attempt.id : null);

	function drawList() {
		const items = attempts.map((a) => el("li", {},
			el("a", { class: "attempt-item", href: `#/task/${taskId}/${a.id}`,
				dataset: { attemptId: String(a.id), state: a.state },
				"aria-current": a.id === shownId() ? "true" : null },
				el("span", { class: "attempt-item-main" },
					el("span", { class: "attempt-exec" }, labelOf(a.executor)),
					el("span", { class: "branch mono" }, a.branch || "")),
				el("span", { class: "attempt-item-side" },
					statePill(a.state),
					el("time", { class: "job-time", datetime: new Date(a.created_at * 1000).toISOString() },
						ago(a.created_at))))));
		replaceChildren(list, items);
		list.setAttribute("aria-busy", "false");
		listStatus.textContent = attempts.length ? "" : "No attempts yet.";
		listStatus.hidden = !listStatus.textContent;
	}

	function select() {
		const id = wanted ?? (attempts[0] ? attempts[0].id : null);
		if (id === null || id === shownId())
			return;
		const a = attempts.find((x) => x.id === id);
		if (!a) {
			if (wanted !== null)
				loadAttempt(wanted);
			return;
		}
		panelCtl?.abort();
		panelCtl = new AbortController();
		signal.addEventListener("abort", () => panelCtl.abort(), { once: true });
		panel = attemptPanel({ attempt: a, executors, signal: panelCtl.signal });
		replaceChildren(detail, panel.element);
		drawList();
	}

	function upsert(a) {
		const i = attempts.findIndex((x) => x.id === a.id);
		if (i >= 0)
			attempts[i] = a;
		else
			attempts = [a, ...attempts].sort((x, y) => y.id - x.id);
		if (panel && panel.attempt.id === a.id)
			panel.update(a);
		drawList();
	}

	// ---- loading ----

	async function loadTask() {
		try {
			const r = await api.get(`/api/tasks/${tid}`, { toast: false, signal });
			task = r.task;
			showTask();
			return true;
		} catch (err) {
			if (err.name === "AbortError" || signal.aborted)
				return false;
			if (err.status === 404)
				notFound(main, "It was deleted, or it is not yours.");
			else
				toastError("Could not load the task: " + err.message, { code: err.code });
			return false;
		}
	}

	let listing = false;
	let listAgain = false;
	async function loadAttempts() {
		if (listing) {
			listAgain = true;
			return;
		}
		listing = true;
		try {
			do {
				listAgain = false;
				try {
					const r = await api.get(`/api/tasks/${tid}/attempts`, { toast: false, signal });
					attempts = (r.attempts || []).slice().sort((x, y) => y.id - x.id);
					drawList();
					if (panel) {
						const a = attempts.find((x) => x.id === panel.attempt.id);
						if (a)
							panel.update(a);
					}
					select();
				} catch (err) {
					if (err.name === "AbortError" || signal.aborted)
						return;
					listStatus.hidden = false;
					listStatus.textContent = "Could not load the attempts: " + err.message;
				}
			} while (listAgain && !signal.aborted);
		} finally {
			listing = false;
		}
	}

	async function loadAttempt(id) {
		id = Number(id);
		try {
			const r = await api.get(`/api/attempts/${encodeURIComponent(id)}`, { toast: false, signal });
			if (String(r.attempt.task_id) !== taskId)
				return;
			upsert(r.attempt);
			select();
		} catch (err) {
			if (err.name === "AbortError" || signal.aborted)
				return;
			if (err.status === 404) {
				attempts = attempts.filter((x) => x.id !== id);
				drawList();
			}
		}
	}

	form.addEventListener("submit", async (ev) => {
		ev.preventDefault();
		clearErrors(fields, general);
		const body = { executor: execField.control.value };
		if (promptField.control.value.trim())
			body.prompt = promptField.control.value;
		if (baseField.control.value.trim())
			body.base_branch = baseField.control.value.trim();
		submit.disabled = true;
		try {
			const r = await api.post(`/api/tasks/${tid}/attempts`, body, { toast: false, signal });
			promptField.control.value = "";
			upsert(r.attempt);
			location.hash = `#/task/${taskId}/${r.attempt.id}`;
		} catch (err) {
			if (err.name === "AbortError")
				return;
			if (err.code === "credential_missing") {
				// Next to the executor, and the way to fix it.
				execField.setError(err.message);
				general.hidden = false;
				replaceChildren(general,
					el("span", {}, labelOf(execField.control.value), " needs your credential first. "),
					connectLink("attempt-new-connect"));
			} else {
				fieldError(fields, err, general);
			}
		} finally {
			submit.disabled = false;
		}
	});

	(async () => {
		let meta;
		try {
			meta = await getMeta();
		} catch (err) {
			toastError("Could not load the server's vocabularies: " + err.message, { code: err.code });
			return;
		}
		if (signal.aborted)
			return;
		executors = executorChoices(meta);
		// Primed before loading: nothing between the load and the feed is missed.
		await onEvents((events) => {
			let list = false;
			const refetch = new Set();
			for (const e of events) {
				const k = e.kind;
				if (k.startsWith("task.") && String(e.subject) === taskId) {
					if (k === "task.deleted")
						notFound(main, "It was deleted.");
					else
						loadTask();
				} else if (k.startsWith("attempt.") && task && String(e.project_id) === String(task.project_id)) {
					if (attempts.some((a) => String(a.id) === String(e.subject)))
						refetch.add(String(e.subject));
					else
						list = true; // another task's, or a new one of ours
				} else if ((k === "job.output" || k === "job.finished") && panel) {
					panel.jobOutput(e.subject);
				}
			}
			if (list)
				loadAttempts();
			for (const id of refetch)
				loadAttempt(id);
		}, signal);
		if (signal.aborted)
			return;
		if (!await loadTask())
			return;
		try {
			const r = await api.get(`/api/projects/${encodeURIComponent(task.project_id)}`, { toast: false, signal });
			project = r.project;
			showTask();
		} catch (err) {
			if (err.name === "AbortError" || signal.aborted)
				return;
		}
		const def = project ? project.default_executor : null;
		replaceChildren(execField.control, executors.map((x) =>
			el("option", { value: x.name, selected: x.name === def }, x.label)));
		if (def && !executors.some((x) => x.name === def))
			execField.control.append(el("option", { value: def, selected: true }, def));
		baseField.control.placeholder = project ? project.base_branch : "the project's base branch";
		submit.disabled = false;
		loadAttempts();
	})();

	return {
		update(p) {
			if ((p[0] || "") !== taskId)
				return false; // another task: build the screen again
			wanted = ID.test(p[1] || "") ? Number(p[1]) : null;
			select();
			drawList();
		},
	};
}
