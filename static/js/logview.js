// logview.js - a long log as lines, drawing only the lines in sight.
//
//   const log = logView({ id: "attempt-log", label: "Raw log of run 1" });
//   panel.append(log.element);
//   log.write(chunks);          // [{stream, data}], in order (job output)
//   log.finish("(no output)");  // the placeholder when nothing came
//
// terminal.js keeps its output as text nodes, which is fine for a job's
// few hundred KiB; a run of an agent prints tens of thousands of lines, and
// a DOM of that many nodes makes every scroll and every append slow. Here
// the lines live in an array and the page holds only the rows on screen
// (plus a few above and below): a tall, empty sizer gives the scrollbar its
// length, and one block of row elements, reused, is moved to where the
// view looks. Appending 50,000 lines costs the split of their text and one
// draw of about fifty rows.
//
// - Every row is one line of one stream (class out-STREAM, data-stream):
//   text only, never markup; terminal control sequences are cleaned the
//   way terminal.js does (cleanText), with an escape sequence or "\r" split
//   across chunks held back until the rest arrives. A line is continued by
//   the next chunk of the same stream until its "\n".
// - Rows have one fixed height (measured once from the CSS), lines do not
//   wrap; a long line scrolls sideways.
// - It follows the tail while the user is at the bottom; scrolling up
//   stops that and shows "Follow output" (#ID-follow), which jumps back
//   and follows again; scrolling back to the bottom follows again too.
// - At most `cap` lines (MAX_LINES) are kept: past that the oldest are
//   dropped in blocks and #ID-trimmed says how many.
// - The element's dataset says what it holds: data-lines (lines kept),
//   data-dropped, data-following; for tests and for people reading it.
//
// Heights and offsets are set through the CSSOM (node.style.height), which
// the CSP's style-src 'self' allows; it forbids only style attributes.

import { el } from "./dom.js";
import { cleanText } from "./terminal.js";

export const MAX_LINES = 500000;
const STREAMS = new Set(["stdout", "stderr", "system"]);
const OVERSCAN = 20;        // rows drawn above and below the view
const NEAR_BOTTOM_PX = 24;
const LINE_CHARS_MAX = 8192; // of one row's text (the rest: "…")
const PAD = 8;              // px above the first line and below the last

export function logView({ id, label, cap = MAX_LINES, placeholder = "Waiting for output\u2026" }) {
	const sizer = el("div", { class: "logview-sizer", "aria-hidden": "true" });
	const rows = el("div", { class: "logview-rows" });
	const waiting = el("div", { class: "logview-placeholder" }, placeholder);
	const view = el("div", {
		id, class: "logview", tabindex: "0", role: "log", "aria-label": label,
		dataset: { lines: "0", dropped: "0", following: "true", empty: "true" },
	}, sizer, rows, waiting);
	const trimmedNote = el("p", { id: id + "-trimmed", class: "terminal-note", role: "status", hidden: true });
	const follow = el("button", {
		id: id + "-follow", class: "btn btn-sm terminal-follow", type: "button", hidden: true,
		"aria-controls": id,
	}, "\u2193 Follow output");
	const element = el("div", { class: "terminal-wrap logview-wrap" }, trimmedNote, view, follow);

	const texts = [];    // the lines' text
	const streams = [];  // and their streams
	let open = null;     // the stream whose last line has no "\n" yet
	let dropped = 0;
	let following = true;
	let rowH = 0;        // px, measured on the first draw
	let lastTop = -1;    // the scrollTop we set ourselves
	let frame = 0;       // a pending requestAnimationFrame
	let drawnFirst = -1, drawnCount = 0, drawnTotal = -1;
	const held = {};     // stream -> the unfinished escape sequence

	function measure() {
		if (rowH)
			return rowH;
		const probe = el("div", { class: "logview-line" }, "M");
		rows.append(probe);
		rowH = probe.getBoundingClientRect().height || 18;
		probe.remove();
		return rowH;
	}

	function atBottom() {
		return view.scrollHeight - view.scrollTop - view.clientHeight < NEAR_BOTTOM_PX;
	}

	function draw() {
		frame = 0;
		if (!element.isConnected)
			return;
		const h = measure();
		const n = texts.length;
		sizer.style.height = n * h + 2 * PAD + "px";
		if (following) {
			const top = Math.max(0, n * h + 2 * PAD - view.clientHeight);
			if (view.scrollTop !== top) {
				view.scrollTop = top;
				lastTop = view.scrollTop;
			}
		}
		const first = Math.min(n, Math.max(0, Math.floor((view.scrollTop - PAD) / h) - OVERSCAN));
		const count = Math.min(n - first, Math.ceil(view.clientHeight / h) + 2 * OVERSCAN);
		// The drawn rows still hold the same lines (and none of them grew).
		if (first === drawnFirst && count === drawnCount && n === drawnTotal)
			return;
		while (rows.childElementCount < count)
			rows.append(el("div", { class: "logview-line" }));
		while (rows.childElementCount > count)
			rows.lastChild.remove();
		let row = rows.firstElementChild;
		for (let i = first; i < first + count; i++, row = row.nextElementSibling) {
			const s = streams[i];
			const t = texts[i].length > LINE_CHARS_MAX ? texts[i].slice(0, LINE_CHARS_MAX) + "\u2026" : texts[i];
			if (row.textContent !== t)
				row.textContent = t;
			if (row.dataset.stream !== s) {
				row.dataset.stream = s;
				row.className = "logview-line out-" + s;
			}
		}
		rows.style.transform = `translateY(${PAD + first * h}px)`;
		drawnFirst = first;
		drawnCount = count;
		drawnTotal = n;
	}

	function schedule() {
		if (!frame)
			frame = requestAnimationFrame(draw);
	}

	view.addEventListener("scroll", () => {
		if (view.scrollTop === lastTop) {
			schedule();
			return;
		}
		lastTop = -1;
		following = atBottom();
		view.dataset.following = String(following);
		follow.hidden = following || texts.length === 0;
		schedule();
	}, { passive: true });
	follow.addEventListener("click", () => {
		following = true;
		view.dataset.following = "true";
		follow.hidden = true;
		draw();
		view.focus({ preventScroll: true });
	});
	// A view shown after being hidden (a tab) has a size again.
	if (typeof ResizeObserver === "function")
		new ResizeObserver(() => { drawnTotal = -1; schedule(); }).observe(view);

	function trim() {
		if (texts.length <= cap)
			return;
		// In blocks of a tenth, so dropping is not a shift per line.
		const n = texts.length - cap + Math.floor(cap / 10);
		texts.splice(0, n);
		streams.splice(0, n);
		dropped += n;
		view.dataset.dropped = String(dropped);
		trimmedNote.hidden = false;
		trimmedNote.textContent = `Showing the last ${texts.length.toLocaleString()} lines: `
			+ `${dropped.toLocaleString()} earlier lines were dropped from this page to keep it responsive.`;
		drawnTotal = -1;
	}

	// Splits text into lines: its first piece continues the open line of
	// its stream, a last piece without "\n" stays open.
	function add(stream, text) {
		if (open !== stream)
			open = null;
		const parts = text.split("\n");
		const last = parts.length - 1;
		for (let k = 0; k <= last; k++) {
			if (k === 0 && open === stream) {
				texts[texts.length - 1] += parts[0];
			} else if (k < last || parts[k] !== "") {
				texts.push(parts[k]);
				streams.push(stream);
			}
		}
		open = parts[last] !== "" || (last === 0 && open === stream) ? stream : null;
	}

	return {
		element,
		view,
		get following() { return following; },
		get lines() { return texts.length; },
		get dropped() { return dropped; },
		// The text of line i (0: the first kept).
		line(i) { return texts[i]; },
		// Appends chunks [{stream, data}] in order.
		write(chunks, final = false) {
			let added = false;
			for (const c of chunks) {
				const stream = STREAMS.has(c.stream) ? c.stream : "system";
				const [text, rest] = cleanText((held[stream] || "") + String(c.data ?? ""), final);
				held[stream] = rest;
				if (!text)
					continue;
				add(stream, text);
				added = true;
			}
			if (!added)
				return;
			if (view.dataset.empty === "true") {
				waiting.remove();
				view.dataset.empty = "false";
			}
			trim();
			// The last line may have grown: redraw it.
			drawnTotal = -1;
			view.dataset.lines = String(texts.length);
			if (!following)
				follow.hidden = false;
			schedule();
		},
		// The output is complete: flushes what was held back, and says so
		// when there was none.
		finish(empty = "(no output)") {
			const rest = Object.entries(held).filter(([, v]) => v).map(([stream, data]) => ({ stream, data }));
			for (const k of Object.keys(held))
				held[k] = "";
			if (rest.length)
				this.write(rest, true);
			if (view.dataset.empty === "true")
				waiting.textContent = empty;
		},
		// Draws now instead of at the next frame (after a write, to measure).
		flush() {
			if (frame)
				cancelAnimationFrame(frame);
			draw();
		},
	};
}
