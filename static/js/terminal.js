// terminal.js - a job's output in a <pre>, as text only, bounded.
//
//   const term = terminal({ id: "job-output", label: "Output of job 4" });
//   panel.append(term.element);
//   term.write(chunks);          // [{stream, data}], in order
//   term.finish("(no output)");  // the placeholder when nothing came
//
// - Output is never markup: every chunk becomes a text node in a <span
//   class="out-STREAM" data-stream="STREAM">, so stdout, stderr and the
//   worker's system lines look different (app.css) and can be told apart.
// - Terminal control sequences are not interpreted: ANSI escape sequences
//   (colours, cursor moves, titles) are removed, "\r\n" and a lone "\r"
//   become "\n", and other control characters (but tab) are dropped. An
//   escape sequence split across two chunks of one stream is held back until
//   the rest arrives.
// - The view follows the tail while the user is at the bottom; scrolling up
//   stops that and shows a "Follow output" button (#ID-follow) that jumps
//   back down and follows again.
// - At most `cap` characters (default MAX_CHARS) are kept in the page: past
//   that the oldest chunks are dropped and a note above the output (#ID-trimmed)
//   says how much. The whole output stays on the server
//   (GET /api/jobs/{id}/output).

import { el } from "./dom.js";

export const MAX_CHARS = 512 * 1024;
const STREAMS = new Set(["stdout", "stderr", "system"]);
const NEAR_BOTTOM_PX = 24;

// ESC [ params intermediates final | ESC ] ... (BEL | ESC \) | ESC and one more
// byte (charset selection and the like). The C1 CSI (U+009B) form too.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[ -/]*[0-~]/g;
// An escape sequence not finished at the end of a chunk.
// eslint-disable-next-line no-control-regex
const PARTIAL = /(?:\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[ -/]*)?|\x9b[0-?]*[ -/]*)$/;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g;

function humanSize(n) {
	if (n < 1024)
		return `${n} characters`;
	if (n < 1024 * 1024)
		return `${(n / 1024).toFixed(0)} KiB`;
	return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

// Cleans one chunk's text; returns [text, heldBack]: the start of an
// escape sequence or a "\r" at the end waits for the next chunk of its
// stream, unless this is the last (final).
export function cleanText(data, final = false) {
	let held = "";
	const m = final ? null : PARTIAL.exec(data);
	// Hold back only a plausible start of a sequence, not a whole long tail.
	if (m && m[0].length > 0 && m[0].length < 256) {
		held = m[0];
		data = data.slice(0, m.index);
	} else if (!final && data.endsWith("\r")) {
		held = "\r";
		data = data.slice(0, -1);
	}
	if (final)
		data = data.replace(/[\x1b\x9b]/g, "");
	const text = data.replace(ESCAPES, "").replace(/\r\n/g, "\n").replace(/\r/g, "\n").replace(CONTROLS, "");
	return [text, held];
}

export function terminal({ id, label, cap = MAX_CHARS, placeholder = "Waiting for output\u2026" }) {
	const pre = el("pre", {
		id, class: "terminal", tabindex: "0", role: "log", "aria-label": label, dataset: { empty: "true" },
	});
	const waiting = el("span", { class: "terminal-placeholder" }, placeholder);
	pre.append(waiting);
	const trimmedNote = el("p", { id: id + "-trimmed", class: "terminal-note", role: "status", hidden: true });
	const follow = el("button", {
		id: id + "-follow", class: "btn btn-sm terminal-follow", type: "button", hidden: true,
		"aria-controls": id,
	}, "\u2193 Follow output");
	const element = el("div", { class: "terminal-wrap" }, trimmedNote, pre, follow);

	let kept = 0;      // characters in the page
	let dropped = 0;   // characters removed from the page
	let following = true;
	let programmatic = false; // our own scroll, not the user's
	const held = {};   // stream -> an unfinished escape sequence

	function atBottom() {
		return pre.scrollHeight - pre.scrollTop - pre.clientHeight < NEAR_BOTTOM_PX;
	}

	function toBottom() {
		programmatic = true;
		pre.scrollTop = pre.scrollHeight;
	}

	pre.addEventListener("scroll", () => {
		if (programmatic) {
			programmatic = false;
			return;
		}
		following = atBottom();
		follow.hidden = following;
	});
	follow.addEventListener("click", () => {
		following = true;
		follow.hidden = true;
		toBottom();
		pre.focus({ preventScroll: true });
	});

	function trim() {
		while (kept > cap) {
			const first = pre.firstChild;
			if (!first)
				break;
			const n = first.textContent.length;
			const over = kept - cap;
			if (n > over && first.nodeType === Node.ELEMENT_NODE) {
				// Cut the front of this chunk only.
				first.textContent = first.textContent.slice(over);
				kept -= over;
				dropped += over;
				break;
			}
			first.remove();
			kept -= n;
			dropped += n;
		}
		if (dropped > 0) {
			trimmedNote.hidden = false;
			trimmedNote.textContent = `Showing the last ${humanSize(cap)} of output: ${humanSize(dropped)} `
				+ "earlier were dropped from this page to keep it responsive.";
			pre.dataset.trimmed = "true";
		}
	}

	return {
		element,
		pre,
		get following() { return following; },
		get dropped() { return dropped; },
		// Appends chunks [{stream, data}] in order.
		write(chunks, final = false) {
			if (!chunks.length)
				return;
			const frag = document.createDocumentFragment();
			let added = 0;
			for (const c of chunks) {
				const stream = STREAMS.has(c.stream) ? c.stream : "system";
				const [text, rest] = cleanText((held[stream] || "") + String(c.data ?? ""), final);
				held[stream] = rest;
				if (!text)
					continue;
				const last = frag.lastChild;
				if (last && last.dataset.stream === stream) {
					last.append(text);
				} else {
					frag.append(el("span", { class: "out-" + stream, dataset: { stream } }, text));
				}
				added += text.length;
			}
			if (!added)
				return;
			if (pre.dataset.empty === "true") {
				waiting.remove();
				pre.dataset.empty = "false";
			}
			pre.append(frag);
			kept += added;
			trim();
			if (following)
				toBottom();
			else
				follow.hidden = false;
		},
		// The output is complete: flushes what was held back, and says so
		// when there was none.
		finish(empty = "(no output)") {
			const rest = Object.entries(held).filter(([, v]) => v).map(([stream, data]) => ({ stream, data }));
			for (const k of Object.keys(held))
				held[k] = "";
			if (rest.length)
				this.write(rest, true);
			if (pre.dataset.empty === "true")
				waiting.textContent = empty;
		},
	};
}
