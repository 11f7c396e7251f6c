// ansi.js - a small terminal screen: raw TTY output in, lines of styled
// text out. For output that draws with the cursor (the Claude CLI's
// sign-in prompts redraw lines in place), where terminal.js, which only
// strips escape sequences, would show every redraw one after the other.
//
//   const scr = ansiScreen({ id: "claude-login-term", label: "Claude CLI" });
//   box.append(scr.element);
//   scr.write(chunks);     // [{stream, data}] in order, data as the TTY sent it
//   scr.text();            // what the screen shows, as plain text
//
// Debian's libjs-xterm (3.8.1) ships only a CommonJS stub as xterm.js
// (`require("./public/Terminal")`), which no browser can load; hence this.
//
// What it does with the stream:
// - Printable text goes at the cursor, overwriting (no insert mode). Lines
//   do not wrap: the CSS wraps long ones, so a URL stays one line's text.
// - "\n" starts the next line (column 0: a TTY's output mode turns it into
//   "\r\n" anyway, and text from elsewhere means it so), "\r" goes to
//   column 0, "\b" one left, "\t" to the next multiple of 8.
// - CSI cursor moves (A B C D E F G H f d), erase in line (K) and in display
//   (J; 2 and 3 clear the screen's rows, the scrollback above stays), and
//   SGR (m): bold, dim, italic, underline, inverse, the 16 colours, and the
//   256 and RGB colours reduced to the nearest of those (as classes, the
//   CSP forbids style attributes). Any other sequence (modes, titles,
//   OSC, charsets) is dropped.
// - The "screen" is the last `rows` lines; H and J address it.
// - A sequence cut between two chunks is held back until the rest comes.
// - At most `cap` lines are kept; the oldest go first.
// Text is text: everything lands in text nodes, never markup.

import { el } from "./dom.js";

const ROWS = 24;
const CAP = 2000;
const WIDTH_MAX = 4096; // columns of one line (a runaway cursor stops here)

// CSI | OSC | DCS-like strings | other ESC sequences.
// eslint-disable-next-line no-control-regex
const SEQ = /\x1b\[([0-?]*)([ -/]*)([@-~])|\x9b([0-?]*)([ -/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b]*\x1b\\|\x1b[ -/]*[0-~]/y;
// An unfinished sequence at the end of a chunk.
// eslint-disable-next-line no-control-regex
const PARTIAL = /(?:\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[PX^_][^\x1b]*|[ -/]*)?|\x9b[0-?]*[ -/]*)$/;

// The 16 colours' RGB, for reducing 256-colour and RGB values.
const BASE = [
	[0, 0, 0], [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188], [17, 168, 205], [229, 229, 229],
	[102, 102, 102], [241, 76, 76], [35, 209, 139], [245, 245, 67], [59, 142, 234], [214, 112, 214], [41, 184, 219], [255, 255, 255],
];

function nearest(r, g, b) {
	let best = 7, dist = Infinity;
	for (let i = 0; i < BASE.length; i++) {
		const [x, y, z] = BASE[i];
		const d = (x - r) ** 2 + (y - g) ** 2 + (z - b) ** 2;
		if (d < dist) {
			dist = d;
			best = i;
		}
	}
	return best;
}

function color256(n) {
	if (n < 16)
		return n;
	if (n >= 232) {
		const v = 8 + (n - 232) * 10;
		return nearest(v, v, v);
	}
	const i = n - 16;
	const lvl = (x) => (x ? 55 + x * 40 : 0);
	return nearest(lvl(Math.floor(i / 36)), lvl(Math.floor(i / 6) % 6), lvl(i % 6));
}

const PLAIN = { fg: -1, bg: -1, bold: false, dim: false, italic: false, underline: false, inverse: false };

function styleClass(s) {
	if (s === PLAIN)
		return "";
	let fg = s.fg, bg = s.bg;
	if (s.inverse) {
		[fg, bg] = [bg < 0 ? 0 : bg, fg < 0 ? 7 : fg];
	}
	const c = [];
	if (fg >= 0)
		c.push("ansi-fg" + fg);
	if (bg >= 0)
		c.push("ansi-bg" + bg);
	if (s.bold)
		c.push("ansi-bold");
	if (s.dim)
		c.push("ansi-dim");
	if (s.italic)
		c.push("ansi-italic");
	if (s.underline)
		c.push("ansi-underline");
	return c.join(" ");
}

// Applies SGR parameters to style s; returns the new style (styles are
// shared, never changed in place).
function sgr(s, params) {
	const p = params.length ? params : [0];
	let n = { ...s };
	for (let i = 0; i < p.length; i++) {
		const v = p[i];
		if (v === 0)
			n = { ...PLAIN };
		else if (v === 1)
			n.bold = true;
		else if (v === 2)
			n.dim = true;
		else if (v === 3)
			n.italic = true;
		else if (v === 4)
			n.underline = true;
		else if (v === 7)
			n.inverse = true;
		else if (v === 22)
			n.bold = n.dim = false;
		else if (v === 23)
			n.italic = false;
		else if (v === 24)
			n.underline = false;
		else if (v === 27)
			n.inverse = false;
		else if (v >= 30 && v <= 37)
			n.fg = v - 30;
		else if (v === 39)
			n.fg = -1;
		else if (v >= 40 && v <= 47)
			n.bg = v - 40;
		else if (v === 49)
			n.bg = -1;
		else if (v >= 90 && v <= 97)
			n.fg = v - 90 + 8;
		else if (v >= 100 && v <= 107)
			n.bg = v - 100 + 8;
		else if (v === 38 || v === 48) {
			let c = -1;
			if (p[i + 1] === 5) {
				c = color256(p[i + 2] ?? 0);
				i += 2;
			} else if (p[i + 1] === 2) {
				c = nearest(p[i + 2] ?? 0, p[i + 3] ?? 0, p[i + 4] ?? 0);
				i += 4;
			}
			if (v === 38)
				n.fg = c;
			else
				n.bg = c;
		}
	}
	const same = Object.keys(PLAIN).every((k) => n[k] === PLAIN[k]);
	return same ? PLAIN : n;
}

export function ansiScreen({ id, label, rows = ROWS, cap = CAP, placeholder = "Waiting for output\u2026" }) {
	const pre = el("pre", { id, class: "terminal ansi-screen", tabindex: "0", "aria-label": label,
		dataset: { empty: "true" } },
	el("span", { class: "terminal-placeholder" }, placeholder));
	const element = el("div", { class: "terminal-wrap" }, pre);

	// lines[i] = {chars: [string], styles: [style]}
	const lines = [{ chars: [], styles: [] }];
	let row = 0, col = 0;
	let style = PLAIN;
	let held = "";
	let frame = 0;

	const top = () => Math.max(0, lines.length - rows);
	function ensureRow(r) {
		while (lines.length <= r)
			lines.push({ chars: [], styles: [] });
	}
	function put(ch) {
		const line = lines[row];
		while (line.chars.length < col) {
			line.chars.push(" ");
			line.styles.push(PLAIN);
		}
		line.chars[col] = ch;
		line.styles[col] = style;
		if (col < WIDTH_MAX)
			col++;
	}
	function newline() {
		col = 0;
		row++;
		ensureRow(row);
		if (lines.length > cap) {
			const n = lines.length - cap;
			lines.splice(0, n);
			row -= n;
		}
	}
	function eraseLine(mode) {
		const line = lines[row];
		if (mode === 0) {
			line.chars.length = Math.min(line.chars.length, col);
			line.styles.length = line.chars.length;
		} else if (mode === 1) {
			for (let i = 0; i <= col && i < line.chars.length; i++) {
				line.chars[i] = " ";
				line.styles[i] = PLAIN;
			}
		} else {
			line.chars = [];
			line.styles = [];
		}
	}
	function eraseDisplay(mode) {
		if (mode === 0) {
			eraseLine(0);
			lines.length = row + 1;
		} else if (mode === 1) {
			for (let r = top(); r < row; r++)
				lines[r] = { chars: [], styles: [] };
			eraseLine(1);
		} else {
			const t = top();
			lines.length = t + 1;
			lines[t] = { chars: [], styles: [] };
			row = t;
			col = 0;
		}
	}
	function csi(paramText, inter, final) {
		if (inter || paramText.startsWith("?") || paramText.startsWith(">") || paramText.startsWith("="))
			return; // modes and queries
		const p = paramText === "" ? [] : paramText.split(/[;:]/).map((x) => (x === "" ? 0 : Number(x) || 0));
		const n = Math.max(1, p[0] || 0);
		switch (final) {
		case "m": style = sgr(style, p); break;
		case "A": row = Math.max(top(), row - n); break;
		case "B": row += n; ensureRow(row); break;
		case "C": col = Math.min(WIDTH_MAX, col + n); break;
		case "D": col = Math.max(0, col - n); break;
		case "E": row += n; ensureRow(row); col = 0; break;
		case "F": row = Math.max(top(), row - n); col = 0; break;
		case "G": col = Math.min(WIDTH_MAX, n - 1); break;
		case "d": row = top() + Math.min(rows, n) - 1; ensureRow(row); break;
		case "H": case "f":
			row = top() + Math.min(rows, Math.max(1, p[0] || 0)) - 1;
			ensureRow(row);
			col = Math.min(WIDTH_MAX, Math.max(1, p[1] || 0) - 1);
			break;
		case "K": eraseLine(p[0] || 0); break;
		case "J": eraseDisplay(p[0] || 0); break;
		default: break;
		}
	}
	function feed(data) {
		let i = 0;
		while (i < data.length) {
			const ch = data[i];
			if (ch === "\x1b" || ch === "\x9b") {
				SEQ.lastIndex = i;
				const m = SEQ.exec(data);
				if (!m) {
					i++; // a lone ESC: dropped
					continue;
				}
				if (m[3] !== undefined)
					csi(m[1], m[2], m[3]);
				else if (m[6] !== undefined)
					csi(m[4], m[5], m[6]);
				i = SEQ.lastIndex;
				continue;
			}
			if (ch === "\n") {
				newline();
			} else if (ch === "\r") {
				col = 0;
			} else if (ch === "\b") {
				col = Math.max(0, col - 1);
			} else if (ch === "\t") {
				col = Math.min(WIDTH_MAX, (Math.floor(col / 8) + 1) * 8);
			} else if (ch >= " " && ch !== "\x7f" && !(ch >= "\x80" && ch <= "\x9f")) {
				put(ch);
			}
			i++;
		}
	}

	function draw() {
		frame = 0;
		const follow = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
		const frag = document.createDocumentFragment();
		lines.forEach((line, idx) => {
			let run = "", runStyle = null;
			const flush = () => {
				if (!run)
					return;
				const cls = styleClass(runStyle);
				frag.append(cls ? el("span", { class: cls }, run) : document.createTextNode(run));
				run = "";
			};
			for (let k = 0; k < line.chars.length; k++) {
				if (line.styles[k] !== runStyle) {
					flush();
					runStyle = line.styles[k];
				}
				run += line.chars[k];
			}
			flush();
			if (idx < lines.length - 1)
				frag.append("\n");
		});
		pre.replaceChildren(frag);
		pre.dataset.empty = "false";
		pre.dataset.lines = String(lines.length);
		if (follow)
			pre.scrollTop = pre.scrollHeight;
	}

	return {
		element,
		pre,
		write(chunks) {
			let any = false;
			for (const c of chunks) {
				let data = held + String(c.data ?? "");
				held = "";
				const m = PARTIAL.exec(data);
				if (m && m[0].length > 0 && m[0].length < 256) {
					held = m[0];
					data = data.slice(0, m.index);
				}
				if (data) {
					feed(data);
					any = true;
				}
			}
			if (any && !frame)
				frame = requestAnimationFrame(draw);
		},
		// The output ended: what was held back is dropped (it was never a
		// whole sequence), and the view is drawn now.
		finish(empty = "(no output)") {
			held = "";
			if (frame) {
				cancelAnimationFrame(frame);
				draw();
			}
			if (pre.dataset.empty === "true")
				pre.querySelector(".terminal-placeholder").textContent = empty;
		},
		// The screen as plain text, lines joined by "\n", trailing blanks cut.
		text() {
			return lines.map((l) => l.chars.join("").replace(/\s+$/, "")).join("\n").replace(/\n+$/, "");
		},
	};
}
