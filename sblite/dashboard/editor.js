// A small code editor: a textarea over a highlighted copy of its text, with line numbers and a
// marked error line. The highlighter only colours; it never changes what the textarea holds.

import { h } from "./dom.js";

const KEYWORDS = new Set(("async await break case catch class const continue debugger default delete do else export " +
  "extends finally for function if import in instanceof let new of return static super switch this throw try " +
  "typeof var void while with yield").split(" "));
const LITERALS = new Set(["true", "false", "null", "undefined", "NaN", "Infinity"]);
// One token at a time: comments, strings, template strings, numbers, words, anything else.
const TOKEN = /(\/\/[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?|`(?:[^`\\]|\\[\s\S])*`?)|(\b\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?\b|\b0x[\da-f]+\b)|([A-Za-z_$][\w$]*)|([\s\S])/giy;

/** The code as [kind, text] pieces; kind is "" for plain text. */
export function tokens(code) {
  const out = [];
  TOKEN.lastIndex = 0;
  let match;
  while (TOKEN.lastIndex < code.length && (match = TOKEN.exec(code))) {
    const [text, comment, string, number, word] = match;
    let kind = "";
    if (comment) kind = "comment";
    else if (string) kind = "string";
    else if (number) kind = "number";
    else if (word) kind = KEYWORDS.has(word) ? "keyword" : LITERALS.has(word) ? "literal" : "";
    const last = out[out.length - 1];
    if (last && last[0] === kind && !kind) last[1] += text;
    else out.push([kind, text]);
  }
  return out;
}

/** Lines of highlighted spans for `code`. */
function highlight(code) {
  const lines = [[]];
  for (const [kind, text] of tokens(code)) {
    text.split("\n").forEach((part, i) => {
      if (i > 0) lines.push([]);
      if (part) lines[lines.length - 1].push(kind ? h("span", { class: `tok-${kind}` }, part) : part);
    });
  }
  return lines;
}

/** The 1-based line (and column) a server error names, as in "… (line 3, column 7)". */
export function errorPosition(message) {
  const found = /line (\d+)(?:,? column (\d+))?/.exec(message || "");
  return found ? { line: Number(found[1]), column: Number(found[2] || 1) } : null;
}

/**
 * A code editor labelled `label`: { element, value(), setValue(code), markError(message|null) }.
 * The error message goes to `errorEl` (role=alert) and its line is marked in the gutter and the text.
 */
export function codeEditor(id, label, errorEl) {
  const area = h("textarea", {
    id, class: "editor-input", spellcheck: "false", autocomplete: "off", autocapitalize: "off", wrap: "off",
    "aria-describedby": errorEl.id,
  });
  const gutter = h("div", { class: "editor-gutter", "aria-hidden": "true" });
  const view = h("pre", { class: "editor-view", "aria-hidden": "true" });
  let badLine = 0;

  function render() {
    const lines = highlight(area.value);
    gutter.replaceChildren(...lines.map((_, i) =>
      h("span", { class: i + 1 === badLine ? "bad" : null, "data-line": i + 1 }, String(i + 1))));
    view.replaceChildren(...lines.map((parts, i) =>
      h("span", { class: i + 1 === badLine ? "line bad" : "line", "data-line": i + 1 }, parts)));
    area.rows = Math.max(lines.length, 8);
  }

  area.addEventListener("input", render);
  area.addEventListener("keydown", (event) => {
    // Enter keeps the indentation of the line above; a closing bracket typed first on a line
    // takes one level (two spaces) off. Tab is left alone: it moves the focus on.
    if (event.isComposing || (event.key !== "Enter" && !"}])".includes(event.key)) || !event.key) return;
    const start = area.selectionStart;
    const lineStart = area.value.lastIndexOf("\n", start - 1) + 1;
    const before = area.value.slice(lineStart, start);
    const indent = /^[ \t]*/.exec(before)[0];
    if (event.key === "Enter") {
      if (!indent) return;
      event.preventDefault();
      area.setRangeText(`\n${indent}`, start, area.selectionEnd, "end");
    } else {
      if (!indent || indent !== before) return;
      event.preventDefault();
      area.setRangeText(`${indent.slice(0, -2)}${event.key}`, lineStart, area.selectionEnd, "end");
    }
    render();
  });

  const element = h("div", { class: "editor" },
    h("label", { for: id, class: "editor-label" }, label),
    h("div", { class: "editor-frame" }, gutter, h("div", { class: "editor-code" }, view, area)));

  return {
    element,
    input: area,
    value: () => area.value,
    setValue(code) { area.value = code; badLine = 0; errorEl.textContent = ""; render(); },
    markError(message) {
      const where = message ? errorPosition(message) : null;
      badLine = where ? where.line : 0;
      errorEl.textContent = message ? (where ? `Line ${where.line}: ${message}` : message) : "";
      render();
      if (where) {
        const lines = area.value.split("\n");
        const offset = lines.slice(0, where.line - 1).reduce((n, line) => n + line.length + 1, 0);
        area.focus();
        area.setSelectionRange(offset + where.column - 1, offset + where.column - 1);
      }
    },
  };
}
