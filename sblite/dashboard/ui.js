// Pieces the pages share: labelled fields, paged tables, dates, a busy button.

import { announce, fill, h } from "./dom.js";

/** A labelled form control; `tag` is "input", "select" or "textarea". */
export function field(label, attrs, tag = "input", ...children) {
  const id = attrs.id || `f-${attrs.name}`;
  return h("div", { class: "field" }, h("label", { for: id }, label), h(tag, { id, ...attrs }, ...children));
}

/** A date as the reader's local time, or "never". */
export function when(text) {
  if (!text || text.startsWith("0001-")) return "never";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toLocaleString();
}

/** A <time> element for an ISO date. */
export function timeEl(text) {
  return h("time", { datetime: text || "" }, when(text));
}

/**
 * A table of `rows` with `columns` ([header, row => cell]), `size` rows per page and Previous/Next
 * buttons; returns an element that re-renders itself when paged.
 */
export function pagedTable(id, caption, columns, rows, size = 20, empty = "Nothing yet.") {
  const box = h("div", { class: "paged", id });
  let page = 0;
  function render() {
    if (!rows.length) return fill(box, h("p", { class: "muted" }, empty));
    const pages = Math.ceil(rows.length / size);
    page = Math.min(page, pages - 1);
    const shown = rows.slice(page * size, page * size + size);
    fill(box,
      h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption }, h("table", {},
        h("caption", { class: "offscreen" }, caption),
        h("thead", {}, h("tr", {}, columns.map(([head]) => h("th", { scope: "col" }, head)))),
        h("tbody", {}, shown.map((row) => h("tr", {},
          columns.map(([head, cell]) => h("td", { "data-label": head }, cell(row)))))))),
      pages > 1 && h("div", { class: "pager" },
        h("button", { type: "button", class: "secondary", disabled: page === 0, onclick: () => { page -= 1; render(); } },
          "Previous"),
        h("span", { "aria-live": "polite" }, `Page ${page + 1} of ${pages} (${rows.length})`),
        h("button", { type: "button", class: "secondary", disabled: page >= pages - 1,
          onclick: () => { page += 1; render(); } }, "Next")));
    return box;
  }
  return render();
}

/**
 * Run `action` with `button` disabled; announce `done` (a string or fn(value)) or the error.
 * `shownElsewhere(error)` true keeps an error the page shows itself off the status line.
 * Resolves to {ok: true, value} or {ok: false, error}; it never rejects.
 */
export async function busy(button, action, done, shownElsewhere = () => false) {
  if (button) button.disabled = true;
  try {
    const value = await action();
    if (done) announce(typeof done === "function" ? done(value) : done);
    return { ok: true, value };
  } catch (error) {
    if (!shownElsewhere(error)) announce(error.message, "error");
    return { ok: false, error };
  } finally {
    if (button) button.disabled = false;
  }
}
