// conversation.js - a run's conversation (GET /api/attempts/{id}/conversation)
// as a list of entries, appended as they come.
//
//   const conv = conversationView({ id: "attempt-conversation" });
//   panel.append(conv.element);
//   conv.append(entries);      // the API's entries, in order
//   conv.finish("(nothing said)");
//
// Entry shapes are services/conversation.h's:
//   init        the session starting (model, cwd): one quiet line
//   text        what the agent says, as text (never markup)
//   thinking    collapsed (<details>), "Thinking"
//   tool_use    "Tool: NAME" and its input as indented JSON, collapsed
//   tool_result collapsed; data-error="true" (styled) when is_error
//   result      the end of a run: subtype, turns, duration and cost
//   raw         any other line; consecutive raw lines share one block
// An entry with "cut": true says its text was shortened by the server.
// Unknown types show as raw JSON: nothing is dropped silently.
//
// The list scrolls in its own box and follows the end while the reader is
// there. At most `cap` entries stay in the page, a raw line counting as
// one (raw blocks hold RAW_BLOCK_LINES each): the oldest are dropped, with
// a note; the raw log has everything.

import { el } from "./dom.js";

export const MAX_ENTRIES = 5000;
const RAW_BLOCK_LINES = 500; // raw lines of one block, then another
const SUMMARY_CHARS = 120;

function oneLine(text, max = SUMMARY_CHARS) {
	const flat = String(text ?? "").replace(/\s+/g, " ").trim();
	return flat.length > max ? flat.slice(0, max - 1) + "\u2026" : flat;
}

function cutNote(e) {
	return e.cut ? el("p", { class: "conv-cut small muted" }, "(shortened by the server; the raw log has all of it)") : null;
}

function pretty(value) {
	try {
		return JSON.stringify(value, null, 2) ?? "";
	} catch {
		return String(value);
	}
}

// "$0.0123", "3 turns", "12.5 s"
function resultFacts(e) {
	const bits = [];
	if (typeof e.num_turns === "number")
		bits.push(e.num_turns === 1 ? "1 turn" : `${e.num_turns} turns`);
	if (typeof e.duration_ms === "number")
		bits.push(e.duration_ms < 1000 ? `${e.duration_ms} ms` : `${(e.duration_ms / 1000).toFixed(1)} s`);
	if (typeof e.total_cost_usd === "number")
		bits.push("$" + e.total_cost_usd.toFixed(4));
	return bits;
}

function details(kind, summary, body, { error = false } = {}) {
	return el("details", { class: "conv-entry conv-" + kind, dataset: { type: kind, error: String(error) } },
		el("summary", {}, summary),
		body);
}

// One entry's element (raw entries are handled by the view: grouped).
export function entryNode(e) {
	switch (e.type) {
	case "init":
		return el("div", { class: "conv-entry conv-init small muted", dataset: { type: "init" } },
			"Session started",
			e.model ? [" \u00b7 ", el("span", { class: "mono" }, String(e.model))] : null,
			e.cwd ? [" \u00b7 ", el("span", { class: "mono" }, String(e.cwd))] : null);
	case "text":
		return el("div", { class: "conv-entry conv-text", dataset: { type: "text" } },
			el("div", { class: "conv-text-body" }, String(e.text ?? "")), cutNote(e));
	case "thinking":
		return details("thinking", el("span", {}, "Thinking ", el("span", { class: "muted" }, oneLine(e.text, 80))),
			el("div", { class: "conv-body" }, el("div", { class: "conv-text-body" }, String(e.text ?? "")), cutNote(e)));
	case "tool_use":
		return details("tool_use",
			el("span", {}, "Tool: ", el("strong", { class: "mono" }, String(e.name ?? "?")), " ",
				el("span", { class: "muted mono" }, oneLine(pretty(e.input)))),
			el("pre", { class: "conv-pre" }, pretty(e.input)));
	case "tool_result": {
		const err = e.is_error === true;
		return details("tool_result",
			el("span", {}, err ? "Tool error " : "Tool result ", el("span", { class: "muted mono" }, oneLine(e.content))),
			el("div", { class: "conv-body" },
				el("pre", { class: "conv-pre" }, typeof e.content === "string" ? e.content : pretty(e.content)),
				cutNote(e)),
			{ error: err });
	}
	case "result": {
		const err = e.is_error === true;
		return el("div", { class: "conv-entry conv-result", dataset: { type: "result", error: String(err) } },
			el("div", { class: "conv-result-head" },
				el("strong", {}, err ? "Ended with an error" : "Done"),
				e.subtype ? el("span", { class: "muted small" }, String(e.subtype)) : null,
				el("span", { class: "spacer" }),
				el("span", { class: "conv-result-facts small" }, resultFacts(e).join(" \u00b7 "))),
			e.text ? el("div", { class: "conv-text-body" }, String(e.text)) : null,
			cutNote(e));
	}
	default:
		return el("pre", { class: "conv-entry conv-raw", dataset: { type: "unknown" } }, pretty(e));
	}
}

export function conversationView({ id, cap = MAX_ENTRIES, placeholder = "Waiting for the agent\u2026" }) {
	const waiting = el("p", { class: "conv-placeholder muted" }, placeholder);
	const list = el("div", { id, class: "conversation", role: "log", "aria-label": "Conversation", tabindex: "0",
		dataset: { entries: "0" } }, waiting);
	const note = el("p", { id: id + "-trimmed", class: "terminal-note", role: "status", hidden: true });
	const element = el("div", { class: "conversation-wrap" }, note, list);
	let count = 0;
	let kept = 0;        // entries in the page (a raw block: its lines)
	let dropped = 0;
	let rawBlock = null; // the <pre> the next raw line joins

	const weight = (node) => (node.dataset.lines ? Number(node.dataset.lines) : 1);

	function trim() {
		while (kept > cap && list.firstElementChild) {
			const first = list.firstElementChild;
			kept -= weight(first);
			dropped += weight(first);
			if (first === rawBlock)
				rawBlock = null;
			first.remove();
		}
		if (dropped) {
			note.hidden = false;
			note.textContent = `${dropped} earlier entries were dropped from this page; the raw log has them.`;
		}
	}

	return {
		element,
		list,
		get count() { return count; },
		append(entries) {
			if (!entries.length)
				return;
			if (count === 0)
				waiting.remove();
			// The reader at the bottom follows; one who scrolled up stays.
			const atEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
			const frag = document.createDocumentFragment();
			for (const e of entries) {
				count++;
				kept++;
				if (e && e.type === "raw") {
					const line = String(e.text ?? "") + "\n";
					if (rawBlock && Number(rawBlock.dataset.lines) < RAW_BLOCK_LINES) {
						rawBlock.append(line);
						rawBlock.dataset.lines = String(Number(rawBlock.dataset.lines) + 1);
					} else {
						rawBlock = el("pre", { class: "conv-entry conv-raw", dataset: { type: "raw", lines: "1" } }, line);
						frag.append(rawBlock);
					}
					continue;
				}
				rawBlock = null;
				frag.append(entryNode(e || {}));
			}
			list.append(frag);
			list.dataset.entries = String(count);
			trim();
			if (atEnd)
				list.scrollTop = list.scrollHeight;
		},
		finish(empty = "(nothing yet)") {
			if (count === 0)
				waiting.textContent = empty;
		},
		clear() {
			list.replaceChildren(waiting);
			count = 0;
			kept = 0;
			dropped = 0;
			rawBlock = null;
			note.hidden = true;
			list.dataset.entries = "0";
		},
	};
}
