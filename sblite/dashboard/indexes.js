// The Indexes card of the Data page: the open collection's field indexes (GET /sudo/index), added
// with a form or dropped, and the indexes the advisor suggests from slow queries
// (GET /sudo/index/suggestions), each created with one click.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { busy, pagedTable, timeEl } from "./ui.js";

const enc = encodeURIComponent;

/** Why the advisor suggests an index, in words. */
export function reason(suggestion) {
  const count = suggestion.slowQueries;
  return `${count} slow quer${count === 1 ? "y" : "ies"} filtered or sorted on ${suggestion.field} ` +
    `(the last took ${suggestion.lastMs} ms)`;
}

/** What the advisor does, with this server's settings (GET /sudo/index/advisor), for an empty list. */
export function advisorText(settings) {
  if (settings.slowQueryMs < 0) {
    return "No suggestions: the slow-query log is off on this server (slow_query_ms = -1), so the advisor " +
      "sees no queries. Set slow_query_ms to a number of milliseconds to have it suggest indexes.";
  }
  const slow = settings.slowQueryMs === 0 ? "Every query counts as slow here (slow_query_ms = 0)"
    : `A query is slow when its reads take at least slow_query_ms (${settings.slowQueryMs} ms here)`;
  const minutes = Math.round(settings.windowSeconds / 60);
  return `No suggestions yet. ${slow}: ${settings.suggestAfter} slow queries within ${minutes} minutes that ` +
    "filter a field of this collection with == or a range, or sort by it, suggest an index on that field." +
    (settings.autoIndex ? " auto_index is on: each suggestion is created as soon as it is made." : "");
}

/**
 * Show the indexes of collection `name` in `box`; `onChange()` runs after an index is added or
 * dropped. Returns `load()`, which fetches the indexes and suggestions again.
 */
export function showIndexes(box, name, onChange = () => {}) {
  const list = h("div", { id: "index-list" });
  const suggested = h("div", { id: "index-suggestions" });
  const error = h("p", { class: "error", role: "alert", id: "index-error" });
  const fieldInput = h("input", { id: "index-field", name: "field", required: true, autocomplete: "off",
    spellcheck: "false", placeholder: "channel or author.name", "aria-describedby": "index-field-help index-error" });
  const submit = h("button", { type: "submit", class: "secondary" }, "Add index");
  let indexed = [];
  let settings = null;

  async function create(field, button) {
    error.textContent = "";
    const known = indexed.includes(field);
    const done = await busy(button, () => api("POST", `/sudo/index?col=${enc(name)}&field=${enc(field)}`),
      known ? `${field} has an index already` : `Index on ${field} created`, () => true);
    if (!done.ok) { error.textContent = done.error.message; return false; }
    await reloadKeepingFocus();
    return true;
  }

  async function drop(field, button) {
    if (!window.confirm(`Drop the index on ${field} of ${name}? Queries on ${field} scan the collection again.`)) return;
    const done = await busy(button, () => api("DELETE", `/sudo/index?col=${enc(name)}&field=${enc(field)}`),
      `Index on ${field} dropped`);
    if (done.ok) await reloadKeepingFocus();
  }

  /** After a change: load again; a keyboard user whose button went with its row lands on the indexes. */
  async function reloadKeepingFocus() {
    await load();
    onChange();
    if (!box.contains(document.activeElement)) (list.querySelector(".table-wrap") || box.querySelector("h2")).focus();
  }

  async function load() {
    const [indexes, suggestions, advisor] = await Promise.all([
      api("GET", `/sudo/index?col=${enc(name)}`),
      api("GET", `/sudo/index/suggestions?col=${enc(name)}`),
      settings || api("GET", "/sudo/index/advisor"),
    ]);
    settings = advisor;
    indexed = indexes.map((index) => index.field);
    fill(list, pagedTable("index-table", `Field indexes of ${name}`, [
      ["Field", (index) => h("code", {}, index.field)],
      ["Created", (index) => timeEl(index.created)],
      ["", (index) => h("button", { type: "button", class: "secondary danger", "aria-label": `Drop the index on ${index.field}`,
        onclick: (event) => drop(index.field, event.target) }, "Drop")],
    ], indexes, 20, "No field indexes yet: a filter or sort on a document field reads every document."));
    fill(suggested, pagedTable("suggestion-table", `Indexes the advisor suggests for ${name}`, [
      ["Field", (s) => h("code", {}, s.field)],
      ["Why", (s) => h("span", { class: "wrap" }, reason(s), ", last seen ", timeEl(s.lastSeen))],
      ["", (s) => h("button", { type: "button", "aria-label": `Create index on ${s.field}`,
        onclick: (event) => create(s.field, event.target) }, "Create index")],
    ], suggestions, 20, advisorText(settings)));
  }

  fill(box,
    h("h2", { id: "indexes-title", tabindex: "-1" }, `Indexes of ${name}`),
    h("p", { class: "muted" }, "id, accountId and ownerId are always indexed. An index on a document field makes " +
      "== and range filters and sorting on it fast; each one costs every write to the collection a little."),
    list,
    h("form", { class: "row", "aria-label": "Add an index", onsubmit: async (event) => {
      event.preventDefault();
      if (await create(fieldInput.value.trim(), submit)) fieldInput.value = "";
    } },
    h("div", { class: "field grow" }, h("label", { for: "index-field" }, "Field"), fieldInput),
    h("div", { class: "field end" }, submit)),
    h("p", { class: "muted hint", id: "index-field-help" }, "A top-level key or a dotted path."),
    error,
    h("h3", {}, "Suggested by the advisor"),
    suggested);
  box.hidden = false;
  return load;
}

/** How many suggestions each collection has ({name: count}); empty when they cannot be read. */
export async function suggestionCounts() {
  const counts = {};
  try {
    for (const s of await api("GET", "/sudo/index/suggestions")) counts[s.collection] = (counts[s.collection] || 0) + 1;
  } catch {
    return {};
  }
  return counts;
}
