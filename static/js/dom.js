// dom.js - building DOM without innerHTML, and small formatters.
//
//   el("button", {class: "btn", type: "button", on: {click: go}}, "Run")
//
// Strings among the children become text nodes, never markup, so data from
// the API can go anywhere. Props: class, text, dataset {k: v}, on {event: fn},
// hidden, disabled, value; any other key is set with setAttribute (null and
// undefined are skipped). Never pass "style": the CSP forbids it.

export function el(tag, props = {}, ...children) {
	const node = document.createElement(tag);
	for (const [k, v] of Object.entries(props || {})) {
		if (v === null || v === undefined || v === false)
			continue;
		if (k === "class")
			node.className = v;
		else if (k === "text")
			node.textContent = v;
		else if (k === "dataset")
			Object.assign(node.dataset, v);
		else if (k === "on")
			for (const [ev, fn] of Object.entries(v))
				node.addEventListener(ev, fn);
		else if (k === "hidden" || k === "disabled" || k === "value" || k === "checked")
			node[k] = v;
		else
			node.setAttribute(k, v === true ? "" : String(v));
	}
	append(node, children);
	return node;
}

function append(node, children) {
	for (const c of children) {
		if (c === null || c === undefined || c === false)
			continue;
		if (Array.isArray(c))
			append(node, c);
		else
			node.append(c instanceof Node ? c : String(c));
	}
}

// Replaces every child of node.
export function replaceChildren(node, ...children) {
	node.replaceChildren();
	append(node, children);
	return node;
}

// "just now", "42 s ago", "5 min ago", "3 h ago", else a local date.
export function ago(unixSeconds, now = Date.now() / 1000) {
	if (unixSeconds === null || unixSeconds === undefined)
		return "never";
	const d = Math.max(0, Math.round(now - unixSeconds));
	if (d < 5)
		return "just now";
	if (d < 60)
		return `${d} s ago`;
	if (d < 3600)
		return `${Math.floor(d / 60)} min ago`;
	if (d < 86400)
		return `${Math.floor(d / 3600)} h ago`;
	return new Date(unixSeconds * 1000).toLocaleString();
}

// 0.4 s, 12 s, 3 min 20 s, 2 h 5 min.
export function duration(seconds) {
	if (seconds === null || seconds === undefined || seconds < 0)
		return "";
	if (seconds < 60)
		return `${seconds} s`;
	if (seconds < 3600)
		return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
	return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

export function absTime(unixSeconds) {
	return unixSeconds ? new Date(unixSeconds * 1000).toLocaleString() : "";
}
