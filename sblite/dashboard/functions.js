// The Functions page: the list, a code editor to create and change one, running it, its runs,
// the app's secrets and the parked runs.

import { api } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { codeEditor } from "./editor.js";
import { busy, field, pagedTable, timeEl } from "./ui.js";

const TRIGGERS = ["web", "chan_in", "chan_out", "joined", "db_created", "db_updated", "db_deleted"];
const TEMPLATE = `function handle(body, query, headers) {
  log("called with", body);
  return { received: body };
}
`;

const enc = encodeURIComponent;

function successRate(history) {
  if (!history || !history.length) return "no runs";
  const ok = history.filter((run) => run.success).length;
  return `${Math.round((100 * ok) / history.length)}% of ${history.length}`;
}

function runResult(run) {
  return run.success ? h("span", { class: "ok" }, "ok")
    : h("span", { class: "bad" }, `failed${run.error ? `: ${run.error}` : ""}`);
}

function logLines(lines) {
  if (!lines || !lines.length) return h("span", { class: "muted" }, "no log lines");
  return h("details", {}, h("summary", {}, `${lines.length} log line${lines.length === 1 ? "" : "s"}`),
    h("pre", { class: "log" }, lines.join("\n")));
}

/** Render the Functions page into `main`. */
export async function renderFunctions(main) {
  const listBox = h("div", { id: "fn-list" });
  const editorBox = h("section", { id: "fn-editor", class: "card", "aria-labelledby": "fn-editor-title", hidden: true });
  const historyBox = h("div", { id: "fn-history" });
  const secretsBox = h("div", { id: "fn-secrets" });
  const parkedBox = h("div", { id: "fn-parked" });
  const historyName = h("select", { id: "history-name", name: "name" });
  const historyFailed = h("input", { id: "history-failed", type: "checkbox", name: "failed" });
  let functions = [];

  async function loadList() {
    functions = await api("GET", "/fn");
    const infos = await Promise.all(functions.map((fn) => api("GET", `/fn/info/${enc(fn.name)}`).catch(() => null)));
    const rates = new Map(functions.map((fn, i) => [fn.name, infos[i] ? successRate(infos[i].history) : "?"]));
    fill(listBox, pagedTable("fn-table", "Functions", [
      ["Name", (fn) => h("button", { type: "button", class: "link", onclick: () => openEditor(fn) }, fn.name)],
      ["Trigger", (fn) => h("code", {}, fn.trigger)],
      ["Version", (fn) => String(fn.version)],
      ["Last run", (fn) => timeEl(fn.lastRun)],
      ["Success", (fn) => rates.get(fn.name)],
    ], functions, 20, "No functions yet: add one with “New function”."));
    const chosen = historyName.value;
    fill(historyName, h("option", { value: "" }, "All functions"),
      functions.map((fn) => h("option", { value: fn.name, selected: fn.name === chosen }, fn.name)));
  }

  async function loadHistory() {
    const query = new URLSearchParams();
    if (historyName.value) query.set("name", historyName.value);
    if (historyFailed.checked) query.set("failed", "1");
    const runs = await api("GET", `/fn/runs?${query}`);
    fill(historyBox, pagedTable("runs-table", "Function runs, newest first", [
      ["Function", (run) => run.name || run.functionId],
      ["Version", (run) => String(run.version)],
      ["Trigger", (run) => run.trigger],
      ["Started", (run) => timeEl(run.started)],
      ["Took", (run) => `${Math.round(run.durationMs)} ms`],
      ["Result", runResult],
      ["Log", (run) => logLines(run.output)],
    ], runs, 20, "No runs match."));
  }

  async function loadSecrets() {
    const secrets = await api("GET", "/fn/secrets");
    fill(secretsBox, pagedTable("secrets-table", "Secrets", [
      ["Name", (s) => h("code", {}, `env.${s.name}`)],
      ["Value", () => h("span", { class: "muted" }, "hidden")],
      ["", (s) => h("button", {
        type: "button", class: "secondary", "aria-label": `Delete the secret ${s.name}`,
        onclick: async (event) => {
          if (!window.confirm(`Delete the secret ${s.name}?`)) return;
          const done = await busy(event.target, () => api("DELETE", `/fn/secrets/${enc(s.name)}`),
            `Secret ${s.name} deleted`);
          if (done.ok) loadSecrets();
        },
      }, "Delete")],
    ], secrets, 20, "No secrets."));
  }

  async function loadParked() {
    const jobs = await api("GET", "/fn/jobs?status=parked");
    fill(parkedBox, pagedTable("parked-table", "Parked runs", [
      ["Function", (job) => job.function],
      ["Message", (job) => `${job.message.type || ""} on ${job.message.channel || "—"}`],
      ["Attempts", (job) => String(job.attempts)],
      ["Last error", (job) => h("span", { class: "wrap" }, job.lastError || "")],
      ["", (job) => h("button", {
        type: "button", class: "secondary", "aria-label": `Replay the parked run of ${job.function}`,
        onclick: async (event) => {
          const done = await busy(event.target, () => api("POST", `/fn/jobs/${enc(job.id)}/replay`),
            `Replaying the run of ${job.function}`);
          if (done.ok) { loadParked(); loadHistory(); }
        },
      }, "Replay")],
    ], jobs, 20, "No parked runs: every message-triggered run succeeded or is still being retried."));
  }

  function openEditor(fn) {
    const isNew = !fn;
    const codeError = h("p", { class: "error", role: "alert", id: "fn-code-error" });
    const editor = codeEditor("fn-code", "Code", codeError);
    const name = h("input", { id: "fn-name", name: "name", required: true, autocomplete: "off", spellcheck: "false",
      value: fn ? fn.name : "", readonly: !isNew, pattern: "[A-Za-z0-9_\\-]+" });
    const trigger = h("input", { id: "fn-trigger", name: "trigger", required: true, list: "fn-triggers",
      autocomplete: "off", spellcheck: "false", value: fn ? fn.trigger : "web" });
    const save = h("button", { type: "submit" }, isNew ? "Create function" : "Save");
    const form = h("form", {
      class: "stack", "aria-label": isNew ? "New function" : `Edit ${fn.name}`,
      onsubmit: async (event) => {
        event.preventDefault();
        editor.markError(null);
        const body = { name: name.value.trim(), trigger: trigger.value.trim(), code: editor.value() };
        const path = isNew ? "/fn/add" : "/fn/update";
        const compileError = (err) => err.status === 400 && /does not compile/.test(err.message);
        const done = await busy(save, () => api("POST", path, body),
          (saved) => `${saved.name} saved (version ${saved.version})`, compileError);
        if (!done.ok) {
          if (compileError(done.error)) editor.markError(done.error.message);
          return;
        }
        await loadList();
        openEditor(done.value);
      },
    },
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "fn-name" }, "Name"), name),
      h("div", { class: "field" }, h("label", { for: "fn-trigger" }, "Trigger"), trigger,
        h("datalist", { id: "fn-triggers" }, TRIGGERS.map((t) => h("option", { value: t }))))),
    h("p", { class: "muted hint" }, "web: called over HTTP; anything else is a message type or a channel name."),
    editor.element,
    codeError,
    h("div", { class: "buttons" }, save,
      h("button", { type: "button", class: "secondary", onclick: closeEditor }, "Close"),
      !isNew && h("button", {
        type: "button", class: "secondary danger",
        onclick: async (event) => {
          if (!window.confirm(`Delete the function ${fn.name} and its runs?`)) return;
          const done = await busy(event.target, () => api("DELETE", `/fn/del/${enc(fn.name)}`), `${fn.name} deleted`);
          if (done.ok) { closeEditor(); loadList(); loadHistory(); }
        },
      }, "Delete")));

    fill(editorBox, h("h2", { id: "fn-editor-title" }, isNew ? "New function" : `Function ${fn.name}`), form,
      !isNew && runPanel(fn));
    editor.setValue(fn ? fn.code : TEMPLATE);
    editorBox.hidden = false;
    (isNew ? name : editor.input).focus();
  }

  function runPanel(fn) {
    const bodyError = h("p", { class: "error", role: "alert", id: "run-body-error" });
    const bodyInput = h("textarea", { id: "run-body", name: "body", rows: 3, spellcheck: "false",
      "aria-describedby": "run-body-error" });
    bodyInput.value = "{}";
    const result = h("div", { id: "run-result", "aria-live": "polite" });
    const button = h("button", { type: "submit" }, "Run");
    return h("form", {
      class: "stack run", "aria-labelledby": "run-title",
      onsubmit: async (event) => {
        event.preventDefault();
        bodyError.textContent = "";
        let body;
        const text = bodyInput.value.trim();
        if (text) {
          try { body = JSON.parse(text); } catch (err) { bodyError.textContent = `The body is not JSON: ${err.message}`; return; }
        }
        const done = await busy(button, () => api("POST", `/fn/sudoexec/${enc(fn.name)}`, body));
        const runs = await api("GET", `/fn/runs?name=${enc(fn.name)}`).catch(() => []);
        const last = runs[0];
        fill(result,
          h("h4", {}, done.ok ? "Result" : "Error"),
          h("pre", { id: "run-value", class: done.ok ? "" : "bad" },
            done.ok ? JSON.stringify(done.value, null, 2) : done.error.message),
          h("h4", {}, "Log"),
          last && last.output.length ? h("ol", { id: "run-log", class: "log" }, last.output.map((line) => h("li", {}, line)))
            : h("p", { class: "muted" }, "No log lines."));
        if (done.ok) announce(`${fn.name} ran`);
        loadList();
        loadHistory();
      },
    },
    h("h3", { id: "run-title" }, "Run it"),
    h("div", { class: "field" }, h("label", { for: "run-body" }, "JSON body (as root)"), bodyInput),
    bodyError,
    h("div", { class: "buttons" }, button),
    result);
  }

  function closeEditor() {
    editorBox.hidden = true;
    fill(editorBox);
  }

  const secretForm = h("form", {
    class: "row", "aria-label": "Set a secret",
    onsubmit: async (event) => {
      event.preventDefault();
      const form = event.target;
      const name = form.elements.name.value.trim();
      const done = await busy(form.querySelector("button"),
        () => api("POST", "/fn/secrets", { name, value: form.elements.value.value }), `Secret ${name} saved`);
      if (done.ok) { form.reset(); loadSecrets(); }
    },
  },
  field("Secret name", { id: "secret-name", name: "name", required: true, autocomplete: "off", spellcheck: "false" }),
  field("Value", { id: "secret-value", name: "value", type: "password", required: true, autocomplete: "new-password" }),
  h("div", { class: "field end" }, h("button", { type: "submit" }, "Save secret")));

  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Functions"),
      h("button", { type: "button", id: "new-function", onclick: () => openEditor(null) }, "New function")),
    editorBox,
    h("section", { class: "card", "aria-labelledby": "fn-list-title" }, h("h2", { id: "fn-list-title" }, "All functions"),
      listBox),
    h("section", { class: "card", "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, "Run history"),
      h("form", { class: "row filters", "aria-label": "Filter the runs", onsubmit: (event) => {
        event.preventDefault();
        busy(event.target.querySelector("button"), loadHistory);
      } },
      h("div", { class: "field" }, h("label", { for: "history-name" }, "Function"), historyName),
      h("div", { class: "field check" }, historyFailed, h("label", { for: "history-failed" }, "Failed runs only")),
      h("div", { class: "field end" }, h("button", { type: "submit", class: "secondary" }, "Show runs"))),
      historyBox),
    h("section", { class: "card", "aria-labelledby": "secrets-title" }, h("h2", { id: "secrets-title" }, "Secrets"),
      h("p", { class: "muted" }, "Functions read them as env.NAME. Values can be set, never read back."),
      secretForm, secretsBox),
    h("section", { class: "card", "aria-labelledby": "parked-title" }, h("h2", { id: "parked-title" }, "Parked runs"),
      h("p", { class: "muted" }, "Message-triggered runs that failed every attempt. Replay one to run it again."),
      parkedBox));
  await Promise.all([loadList(), loadSecrets(), loadParked()]);
  await loadHistory();
}
