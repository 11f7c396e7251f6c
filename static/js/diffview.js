// diffview.js - an attempt's stored diff (GET /api/attempts/{id}/diff) as
// files and hunks.
//
//   panel.append(diffView(diff, { id: "attempt-diff" }));
//
// The shape is services/mirror.h's: {base, head, files: [{path, old_path,
// status, binary, additions, deletions, truncated, hunks: [{header,
// old_start, old_lines, new_start, new_lines, lines: [{t, s}]}]}],
// files_total, additions, deletions, truncated}.
//
// - A summary line: files changed, +additions, -deletions; when the server
//   listed fewer files than changed (files_total), a note says so.
// - A list of the files (.diff-file[data-path][data-status]), each a
//   <details>: its status as a pill, the path (old -> new for a rename),
//   +/- counts; opened, its hunks, each a <details open> of its own with
//   the @@ header, then a table of lines with the old and new line numbers
//   and the +/-/space marker (data-t). Files are open while the diff is
//   small (at most OPEN_LINES changed lines), closed otherwise.
// - A binary file says "Binary file"; a truncated one (too large to keep)
//   says so with its counts, and has no hunks.
// Text is text: never markup.

import { el } from "./dom.js";
import { statePill } from "./pill.js";

const OPEN_LINES = 400;

function num(n) {
	return typeof n === "number" && Number.isFinite(n) ? n : 0;
}

function counts(add, del) {
	return el("span", { class: "diff-counts mono" },
		el("span", { class: "diff-add" }, "+" + num(add)), " ",
		el("span", { class: "diff-del" }, "\u2212" + num(del)));
}

function hunkTable(h) {
	let o = num(h.old_start), n = num(h.new_start);
	const rows = [];
	for (const line of Array.isArray(h.lines) ? h.lines : []) {
		const t = String(line.t ?? " ");
		let on = "", nn = "";
		if (t === "+")
			nn = String(n++);
		else if (t === "-")
			on = String(o++);
		else if (t === " ") {
			on = String(o++);
			nn = String(n++);
		}
		rows.push(el("tr", { class: "diff-line", dataset: { t } },
			el("td", { class: "diff-ln", "aria-label": on ? "old line " + on : null }, on),
			el("td", { class: "diff-ln", "aria-label": nn ? "new line " + nn : null }, nn),
			el("td", { class: "diff-mark", "aria-hidden": "true" }, t === "\\" ? "" : t),
			el("td", { class: "diff-code" }, String(line.s ?? ""))));
	}
	return el("table", { class: "diff-table" }, el("tbody", {}, rows));
}

function fileNode(f, open) {
	const path = String(f.path ?? "");
	const renamed = f.old_path && f.old_path !== f.path;
	const status = String(f.status ?? "modified");
	let body;
	if (f.binary) {
		body = el("p", { class: "diff-note muted small", dataset: { note: "binary" } }, "Binary file: not shown.");
	} else if (f.truncated) {
		body = el("p", { class: "diff-note muted small", dataset: { note: "truncated" } },
			`Too large to show here (+${num(f.additions)} \u2212${num(f.deletions)}).`);
	} else if (!Array.isArray(f.hunks) || f.hunks.length === 0) {
		body = el("p", { class: "diff-note muted small", dataset: { note: "empty" } }, "No changes in the text.");
	} else {
		body = el("div", { class: "diff-hunks" }, f.hunks.map((h) =>
			el("details", { class: "diff-hunk", open: true },
				el("summary", { class: "diff-hunk-head mono" }, String(h.header ?? "@@")),
				hunkTable(h))));
	}
	return el("details", { class: "diff-file", open, dataset: { path, status,
		binary: String(!!f.binary), truncated: String(!!f.truncated) } },
		el("summary", { class: "diff-file-head" },
			statePill(status),
			el("span", { class: "diff-path mono" },
				renamed ? [String(f.old_path), " \u2192 "] : null, path),
			el("span", { class: "spacer" }),
			f.binary ? el("span", { class: "muted small" }, "binary") : counts(f.additions, f.deletions)),
		body);
}

export function diffView(diff, { id = "diff" } = {}) {
	const files = Array.isArray(diff?.files) ? diff.files : [];
	const total = num(diff?.files_total) || files.length;
	const changed = files.reduce((a, f) => a + num(f.additions) + num(f.deletions), 0);
	const open = changed <= OPEN_LINES;
	const summary = el("p", { class: "diff-summary", id: id + "-summary" },
		el("strong", {}, total === 1 ? "1 file changed" : `${total} files changed`), " ",
		counts(diff?.additions, diff?.deletions));
	const more = total > files.length || diff?.truncated
		? el("p", { class: "callout callout-info small", id: id + "-truncated" },
			total > files.length
				? `Showing ${files.length} of ${total} files: the diff was too large to keep whole.`
				: "Parts of this diff were too large to keep and are summarized.")
		: null;
	return el("div", { class: "diff", id },
		summary, more,
		files.length ? el("div", { class: "diff-files" }, files.map((f) => fileNode(f, open)))
			: el("p", { class: "muted" }, "No changes."));
}
