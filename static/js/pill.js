// pill.js - a state as a small coloured pill (app.css: .pill[data-state]).
//
//   row.append(statePill("running"));
//   setPill(node, "completed");
//
// The state is the server's word, shown as is; its colour comes from the
// stylesheet, so a state the CSS does not know is shown plain.

import { el } from "./dom.js";

export function statePill(state, attrs = {}, label = null) {
	return el("span", { class: "pill", dataset: { state: String(state) }, ...attrs }, label ?? String(state));
}

export function setPill(node, state, label = null) {
	node.dataset.state = String(state);
	node.textContent = label ?? String(state);
	return node;
}
