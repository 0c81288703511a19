// The Data page: collections with their document counts and permissions in words; a collection's
// documents, paged and filtered with the query operators; a document viewed, edited as JSON,
// created or deleted; its indexes and the advisor's suggestions (indexes.js). Everything goes
// through the root routes (/sudo...).

import { api } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { codeEditor } from "./editor.js";
import { showIndexes, suggestionCounts } from "./indexes.js";
import { jsonProblem } from "./jsoncheck.js";
import { busy } from "./ui.js";

const enc = encodeURIComponent;
const PAGE_SIZE = 20;
const SERVER_FIELDS = ["id", "accountId", "ownerId"];
const OPERATORS = ["==", "!=", "<=", ">=", "<", ">", "!in", "in"];
const WHO = { everyone: "every user of the app", account: "the creator's account", owner: "the creator" };

/** What a collection's name says about who may read and write it (the server's rules, in words). */
export function permissions(name) {
  if (name.startsWith("pub_")) return { digits: "pub_", text: "anyone, even without a token, can read and write" };
  const found = /_(\d)(\d)(\d)_$/.exec(name);
  const [account, everyone] = found ? [Number(found[2]), Number(found[3])] : [4, 0];
  const level = (bit) => (everyone & bit ? "everyone" : account & bit ? "account" : "owner");
  const read = WHO[level(4)];
  const write = WHO[level(2)];
  const digits = found ? `${found[1]}${found[2]}${found[3]}` : "740 (the default)";
  const text = read === write ? `${read} can read and write` : `${read} can read, ${write} can write`;
  return { digits, text };
}

/**
 * The filter box's text as query clauses. Either a JSON array of [field, op, value], or clauses
 * such as `n >= 2 and tag in ["a", "b"]`, each `field op value` with the value read as JSON when
 * it is JSON (a number, "text", true, null, a list) and as plain text otherwise.
 */
export function parseFilter(text) {
  const source = text.trim();
  if (!source) return [];
  if (source.startsWith("[")) {
    const clauses = JSON.parse(source);
    if (!Array.isArray(clauses) || !clauses.every((c) => Array.isArray(c) && c.length === 3)) {
      throw new Error("a JSON filter is a list of [field, operator, value] clauses");
    }
    return clauses;
  }
  return source.split(/\s+and\s+|\s*&&\s*/i).map((part) => {
    const found = new RegExp(`^([\\w.$-]+)\\s*(${OPERATORS.join("|")})\\s*(.+)$`).exec(part.trim());
    if (!found) throw new Error(`“${part.trim()}” is not field operator value (operators: ${OPERATORS.join(" ")})`);
    const [, field, op, raw] = found;
    let value;
    try { value = JSON.parse(raw); } catch { value = raw.trim(); }
    return [field, op, value];
  });
}

function preview(doc) {
  const rest = Object.fromEntries(Object.entries(doc).filter(([key]) => !SERVER_FIELDS.includes(key)));
  const text = JSON.stringify(rest);
  return text.length > 140 ? `${text.slice(0, 139)}…` : text;
}

/** Render the Data page into `main`. */
export async function renderData(main) {
  const collectionsBox = h("div", { id: "collections" });
  const docsBox = h("section", { id: "documents", class: "card", "aria-labelledby": "docs-title", hidden: true });
  const docBox = h("section", { id: "document", class: "card", "aria-labelledby": "doc-title", hidden: true });
  const indexBox = h("section", { id: "indexes", class: "card", "aria-labelledby": "indexes-title", hidden: true });
  let current = null; // {name, page, filter (clauses), text, reload, reloadIndexes}

  async function loadCollections() {
    const names = await api("GET", "/sudolistall");
    const [counts, suggested] = await Promise.all([Promise.all(names.map((name) =>
      api("GET", `/sudo/${enc(name)}?page=1&size=1`).then((found) => found.total, () => "?"))), suggestionCounts()]);
    if (!names.length) {
      return fill(collectionsBox, h("p", { class: "muted" },
        "No collections yet. A collection appears with its first document: create one below."));
    }
    fill(collectionsBox, h("ul", { class: "collections", id: "collection-list" }, names.map((name, i) => {
      const rules = permissions(name);
      return h("li", { class: current && current.name === name ? "current" : null },
        h("button", { type: "button", class: "link", "aria-pressed": String(Boolean(current && current.name === name)),
          onclick: () => openCollection(name) }, name),
        h("span", { class: "muted", "data-count": name }, ` ${counts[i]} document${counts[i] === 1 ? "" : "s"}`),
        suggested[name] && h("span", { class: "tag", "data-suggested": name },
          `${suggested[name]} index${suggested[name] === 1 ? "" : "es"} suggested`),
        h("span", { class: "rules" }, h("code", {}, rules.digits), " ", rules.text));
    })));
  }

  async function openCollection(name, page = 1, filterText = "") {
    current = { name, page, text: filterText, filter: [] };
    docBox.hidden = true;
    fill(docBox);
    const filterInput = h("input", { id: "doc-filter", name: "filter", autocomplete: "off", spellcheck: "false",
      value: filterText, placeholder: 'n >= 2 and tag in ["a", "b"]', "aria-describedby": "doc-filter-help doc-filter-error" });
    const filterError = h("p", { class: "error", role: "alert", id: "doc-filter-error" });
    const desc = h("input", { type: "checkbox", id: "doc-desc", checked: true });
    const list = h("div", { id: "doc-list" });
    const rules = permissions(name);

    async function load() {
      filterError.textContent = "";
      try {
        current.filter = parseFilter(filterInput.value);
      } catch (err) {
        filterError.textContent = `The filter is not understood: ${err.message}`;
        return;
      }
      current.text = filterInput.value;
      const query = `page=${current.page}&size=${PAGE_SIZE}${desc.checked ? "&desc=true" : ""}`;  // any desc= is true
      let found;
      try {
        found = current.filter.length
          ? await api("POST", `/sudoquery/${enc(name)}?${query}`, current.filter)
          : await api("GET", `/sudo/${enc(name)}?${query}`);
      } catch (err) {
        filterError.textContent = err.message;
        return;
      }
      const pages = Math.max(1, Math.ceil(found.total / PAGE_SIZE));
      fill(list,
        h("p", { class: "muted", id: "doc-total", "aria-live": "polite" },
          `${found.total} document${found.total === 1 ? "" : "s"}${current.filter.length ? " match" : ""}` +
          (current.filter.length ? ` · sent as ${JSON.stringify(current.filter)}` : "")),
        found.results.length ? h("ul", { class: "docs", id: "doc-rows" }, found.results.map((doc) =>
          h("li", {},
            h("button", { type: "button", class: "link mono", "aria-label": `Open document ${doc.id}`,
              onclick: () => openDocument(name, doc) }, doc.id.slice(0, 8)),
            h("code", { class: "doc-preview" }, preview(doc))))) : null,
        pages > 1 && h("div", { class: "pager" },
          h("button", { type: "button", class: "secondary", disabled: current.page <= 1,
            onclick: () => { current.page -= 1; load(); } }, "Previous"),
          h("span", {}, `Page ${current.page} of ${pages}`),
          h("button", { type: "button", class: "secondary", disabled: current.page >= pages,
            onclick: () => { current.page += 1; load(); } }, "Next")));
      current.reloadIndexes().catch((err) => announce(err.message, "error"));  // a slow filter may suggest one
    }
    current.reload = load;

    fill(docsBox,
      h("h2", { id: "docs-title" }, name),
      h("p", { class: "rules-line" }, h("strong", {}, "Permissions: "), rules.text,
        h("span", { class: "muted" }, ` (${rules.digits}; root, as here, reaches every document).`)),
      h("form", { class: "row filters", "aria-label": "Filter the documents", onsubmit: (event) => {
        event.preventDefault();
        current.page = 1;
        load();
      } },
      h("div", { class: "field grow" }, h("label", { for: "doc-filter" }, "Filter"), filterInput),
      h("div", { class: "field check" }, desc, h("label", { for: "doc-desc" }, "Newest first")),
      h("div", { class: "field end" }, h("button", { type: "submit", class: "secondary" }, "Apply"))),
      h("p", { class: "muted hint", id: "doc-filter-help" },
        `Clauses joined by “and”: field, one of ${OPERATORS.join(" ")}, and a value (JSON, or text). ` +
        "Fields may be id, accountId, ownerId, a key or a dotted path. Empty shows every document."),
      filterError,
      list);
    docsBox.hidden = false;
    current.reloadIndexes = showIndexes(indexBox, name, loadCollections);
    loadCollections();
    await load();
  }

  function openDocument(name, doc) {
    const isNew = !doc;
    const error = h("p", { class: "error", role: "alert", id: "doc-error" });
    const editor = codeEditor("doc-json", "Document (JSON)", error);
    const collection = h("input", { id: "doc-collection", name: "collection", required: true, autocomplete: "off",
      spellcheck: "false", value: name || "", readonly: !isNew && Boolean(name) });
    const save = h("button", { type: "submit" }, isNew ? "Create document" : "Save");
    const form = h("form", {
      class: "stack", "aria-label": isNew ? "New document" : `Edit document ${doc.id}`,
      onsubmit: async (event) => {
        event.preventDefault();
        editor.markError(null);
        const problem = jsonProblem(editor.value());
        if (problem) {
          editor.markError(`This is not JSON: ${problem}`);
          return;
        }
        const body = JSON.parse(editor.value());
        if (body === null || typeof body !== "object" || Array.isArray(body)) {
          editor.markError("A document is a JSON object: { \"key\": value, … }");
          return;
        }
        for (const key of SERVER_FIELDS) delete body[key];
        const col = collection.value.trim();
        const call = isNew ? () => api("POST", `/sudo/${enc(col)}`, body)
          : () => api("PUT", `/sudo/${enc(col)}/${enc(doc.id)}`, body);
        const done = await busy(save, call, undefined, () => true);
        if (!done.ok) { error.textContent = done.error.message; return; }
        announce(isNew ? `Document created in ${col}` : "Document saved");
        if (!current || current.name !== col) await openCollection(col);
        else { await current.reload(); loadCollections(); }
        openDocument(col, done.value);
      },
    },
    h("div", { class: "field" }, h("label", { for: "doc-collection" }, "Collection"), collection),
    isNew ? h("p", { class: "muted hint" }, "A new name makes a new collection; its suffix sets its permissions " +
      "(_744_: every user reads, the creator writes; pub_: anyone).") : null,
    !isNew && h("dl", { class: "meta" },
      SERVER_FIELDS.map((key) => h("div", {}, h("dt", {}, key), h("dd", {}, h("code", {}, doc[key]))))),
    editor.element,
    h("p", { class: "muted hint" }, isNew ? "The server adds id, accountId and ownerId."
      : "Saving merges these fields into the document, as PUT does: a field taken out here stays; set it to null instead."),
    error,
    h("div", { class: "buttons" }, save,
      h("button", { type: "button", class: "secondary", onclick: () => { docBox.hidden = true; fill(docBox); } }, "Close"),
      !isNew && h("button", {
        type: "button", class: "secondary danger",
        onclick: async (event) => {
          if (!window.confirm(`Delete the document ${doc.id} from ${name}?`)) return;
          const done = await busy(event.target, () => api("DELETE", `/sudo/${enc(name)}/${enc(doc.id)}`),
            "Document deleted");
          if (!done.ok) return;
          docBox.hidden = true;
          fill(docBox);
          if (current) current.reload();
          loadCollections();
        },
      }, "Delete")));
    fill(docBox, h("h2", { id: "doc-title" }, isNew ? "New document" : `Document ${doc.id}`), form);
    const fields = doc ? Object.fromEntries(Object.entries(doc).filter(([key]) => !SERVER_FIELDS.includes(key))) : {};
    editor.setValue(`${JSON.stringify(fields, null, 2)}\n`);
    docBox.hidden = false;
    (isNew && !name ? collection : editor.input).focus();
  }

  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Data"),
      h("button", { type: "button", id: "new-document", onclick: () => openDocument(current ? current.name : "", null) },
        "New document")),
    h("section", { class: "card", "aria-labelledby": "collections-title" },
      h("h2", { id: "collections-title" }, "Collections"), collectionsBox),
    docBox,
    docsBox,
    indexBox);
  await loadCollections();
}
