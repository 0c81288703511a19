// The Tasks page: each task's schedule in words, zone and next run; a form to create or change
// one with a live preview of its next five runs; pause, resume, run now; its run history.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { busy, pagedTable, timeEl } from "./ui.js";

const enc = encodeURIComponent;
const VALUE_LABELS = { function: "Function name", message: "Message type", http: "URL" };
const ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
  "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Kolkata", "Asia/Singapore", "Australia/Sydney"];
const HISTORY_REFRESH_MS = 1000;

/** "2026-12-07T09:00:00+01:00" as "2026-12-07 09:00:00 +01:00" (the task's own zone, as stored). */
function localText(text) {
  if (!text) return "—";
  const found = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(text);
  return found ? `${found[1]} ${found[2]} ${found[3] === "Z" ? "UTC" : found[3]}` : text;
}

function statusCell(task) {
  if (task.status === "paused") {
    return h("span", { class: "bad" }, "paused", task.paused_note ? h("span", { class: "muted" }, ` (${task.paused_note})`) : "");
  }
  return h("span", { class: task.status === "scheduled" ? "ok" : "muted" }, task.status);
}

function runStatus(run) {
  const kind = run.status === "ok" ? "ok" : run.status === "failed" ? "bad" : "muted";
  return h("span", { class: kind }, run.status);
}

function runOutput(run) {
  const lines = [...(run.output || [])];
  if (run.error) lines.push(`error: ${run.error}`);
  if (!lines.length) return "";
  if (lines.length === 1) return h("span", { class: "wrap" }, lines[0]);
  return h("details", {}, h("summary", {}, `${lines.length} lines`), h("pre", { class: "log" }, lines.join("\n")));
}

/** Render the Tasks page into `main`. */
export async function renderTasks(main) {
  const listBox = h("div", { id: "task-list" });
  const editorBox = h("section", { id: "task-editor", class: "card", "aria-labelledby": "task-editor-title", hidden: true });
  const historyBox = h("section", { id: "task-history", class: "card", "aria-labelledby": "task-history-title",
    hidden: true });
  let historyTimer = 0;

  async function loadList() {
    const tasks = await api("GET", "/tasks");
    tasks.sort((a, b) => a.name.localeCompare(b.name));
    fill(listBox, pagedTable("task-table", "Tasks", [
      ["Name", (t) => h("button", { type: "button", class: "link", onclick: () => openEditor(t) }, t.name)],
      ["Does", (t) => h("span", {}, `${t.type} `, h("code", { class: "wrap" }, t.value))],
      ["Schedule", (t) => h("span", {}, t.description, h("br"), h("code", { class: "muted" }, t.interval || t.at))],
      ["Zone", (t) => t.timezone],
      ["Next run", (t) => (t.status === "scheduled" ? localText(t.next_run_local) : "—")],
      ["Status", statusCell],
      ["Actions", (t) => h("div", { class: "buttons" },
        h("button", { type: "button", class: "secondary", "aria-label": `Run now: ${t.name}`,
          onclick: (event) => runNow(event.target, t) }, "Run now"),
        t.status === "paused"
          ? h("button", { type: "button", class: "secondary", "aria-label": `Resume ${t.name}`,
            onclick: (event) => change(event.target, t, "resume", `${t.name} resumed`) }, "Resume")
          : h("button", { type: "button", class: "secondary", "aria-label": `Pause ${t.name}`,
            disabled: t.status === "completed",
            onclick: (event) => change(event.target, t, "pause", `${t.name} paused`) }, "Pause"),
        h("button", { type: "button", class: "secondary", "aria-label": `History of ${t.name}`,
          onclick: () => openHistory(t.name) }, "History"))],
    ], tasks, 20, "No tasks yet: add one with “New task”."));
  }

  async function change(button, task, action, message) {
    const done = await busy(button, () => api("POST", `/tasks/${enc(task.name)}/${action}`, {}), message);
    if (done.ok) loadList();
  }

  async function runNow(button, task) {
    const done = await busy(button, () => api("POST", `/tasks/${enc(task.name)}/run`, {}),
      (run) => `${task.name} ran: ${run.status}`);
    if (done.ok) { loadList(); openHistory(task.name); }
  }

  async function openHistory(name) {
    clearTimeout(historyTimer);
    const table = h("div", { id: "task-runs" });
    const live = h("input", { type: "checkbox", id: "history-live", checked: true });
    let shown = "";
    async function refresh() {
      clearTimeout(historyTimer);
      if (!table.isConnected) return;
      try {
        const runs = await api("GET", `/tasks/${enc(name)}/runs?limit=100`);
        if (!table.isConnected) return;
        const seen = JSON.stringify(runs.map((run) => [run.id, run.status]));
        if (seen !== shown) {  // redrawn only when a run came or changed, so paging holds
          shown = seen;
          fill(table, pagedTable("task-runs-table", `Runs of ${name}, newest first`, [
            ["Scheduled for", (run) => timeEl(run.scheduled_for)],
            ["Trigger", (run) => run.trigger],
            ["Status", runStatus],
            ["Took", (run) => (run.duration_ms == null ? "—" : `${Math.round(run.duration_ms)} ms`)],
            ["Output", runOutput],
          ], runs, 20, "No runs yet."));
        }
      } catch (err) {
        fill(table, h("p", { class: "error", role: "alert" }, err.message));
        return;
      }
      if (live.checked) historyTimer = setTimeout(refresh, HISTORY_REFRESH_MS);
    }
    live.addEventListener("change", refresh);
    fill(historyBox,
      h("div", { class: "page-head" }, h("h2", { id: "task-history-title" }, `History of ${name}`),
        h("div", { class: "buttons" },
          h("div", { class: "field check" }, live, h("label", { for: "history-live" }, "Keep updating")),
          h("button", { type: "button", class: "secondary", onclick: () => { historyBox.hidden = true; fill(historyBox); } },
            "Close"))),
      table);
    historyBox.hidden = false;
    await refresh();
  }

  function openEditor(task) {
    const isNew = !task;
    const previewBox = h("div", { id: "task-preview", "aria-live": "polite" });
    const formError = h("p", { class: "error", role: "alert", id: "task-form-error" });
    const metaError = h("p", { class: "error", role: "alert", id: "task-meta-error" });
    const input = (id, attrs) => h("input", { id, name: id.replace(/^task-/, ""), autocomplete: "off", spellcheck: "false",
      ...attrs });
    const name = input("task-name", { required: true, value: task ? task.name : "", readonly: !isNew });
    const type = h("select", { id: "task-type", name: "type" },
      ["function", "message", "http"].map((t) => h("option", { value: t, selected: (task ? task.type : "message") === t }, t)));
    const valueLabel = h("label", { for: "task-value" });
    const value = input("task-value", { required: true, value: task ? task.value : "" });
    const once = h("input", { type: "checkbox", id: "task-once", checked: Boolean(task && task.at) });
    const whenLabel = h("label", { for: "task-when" });
    const whenHint = h("p", { class: "muted hint", id: "task-when-hint" });
    const when = input("task-when", { required: true, value: task ? task.interval || task.at : "",
      "aria-describedby": "task-when-hint task-preview" });
    const zone = input("task-zone", { list: "task-zones", value: task ? task.timezone : "UTC", required: true });
    const meta = h("textarea", { id: "task-meta", name: "meta", rows: 3, spellcheck: "false",
      "aria-describedby": "task-meta-hint task-meta-error" });
    meta.value = JSON.stringify(task ? task.meta || {} : { channel: "lobby", data: "tick" }, null, 2);
    meta.rows = Math.min(Math.max(meta.value.split("\n").length, 3), 10);
    const overlap = h("select", { id: "task-overlap", name: "overlap" },
      ["skip", "queue_one", "allow"].map((o) => h("option", { value: o, selected: (task ? task.overlap : "skip") === o }, o)));
    const catchup = h("select", { id: "task-catchup", name: "catchup" },
      ["latest", "all", "skip"].map((o) => h("option", { value: o, selected: (task ? task.catchup : "latest") === o }, o)));
    const save = h("button", { type: "submit" }, isNew ? "Create task" : "Save");
    let sequence = 0;
    let timer = 0;

    function relabel() {
      valueLabel.textContent = VALUE_LABELS[type.value];
      whenLabel.textContent = once.checked ? "Run once at" : "Schedule";
      whenHint.textContent = once.checked
        ? "An RFC 3339 time with Z or an offset, or a delay such as +10m or +2h."
        : "Cron (5 or 6 fields, such as 0 9 * * 1-5), @daily, @hourly, or @every 30s / 5m / 1h.";
    }

    async function preview() {
      const mine = ++sequence;
      const text = when.value.trim();
      if (!text) return fill(previewBox, h("p", { class: "muted" }, "Type a schedule to see its next runs."));
      const query = new URLSearchParams({ [once.checked ? "at" : "interval"]: text, tz: zone.value.trim() || "UTC", n: "5" });
      try {
        const found = await api("GET", `/tasks/preview?${query}`);
        if (mine !== sequence) return;
        fill(previewBox,
          h("p", { id: "task-description" }, h("strong", {}, "Runs "), found.description),
          h("ol", { id: "task-next", class: "next-runs", "aria-label": "The next runs" },
            found.next.map((next) => h("li", {}, localText(next.local),
              found.timezone !== "UTC" ? h("span", { class: "muted" }, ` · ${localText(next.utc)}`) : ""))));
      } catch (err) {
        if (mine !== sequence) return;
        fill(previewBox, h("p", { class: "error", id: "task-preview-error" }, err.message));
      }
    }

    function schedulePreview() {
      clearTimeout(timer);
      timer = setTimeout(preview, 200);
    }

    type.addEventListener("change", relabel);
    once.addEventListener("change", () => { relabel(); schedulePreview(); });
    when.addEventListener("input", schedulePreview);
    zone.addEventListener("input", schedulePreview);

    const form = h("form", {
      class: "stack", "aria-label": isNew ? "New task" : `Edit ${task.name}`,
      onsubmit: async (event) => {
        event.preventDefault();
        formError.textContent = "";
        metaError.textContent = "";
        let metaValue = {};
        if (meta.value.trim()) {
          try { metaValue = JSON.parse(meta.value); } catch (err) {
            metaError.textContent = `Meta is not JSON: ${err.message}`;
            meta.focus();
            return;
          }
          if (metaValue === null || typeof metaValue !== "object" || Array.isArray(metaValue)) {
            metaError.textContent = "Meta must be a JSON object, such as {\"channel\": \"lobby\", \"data\": \"hi\"}.";
            meta.focus();
            return;
          }
        }
        const body = {
          type: type.value, value: value.value.trim(), meta: metaValue, timezone: zone.value.trim() || "UTC",
          overlap: overlap.value, catchup: catchup.value,
          interval: once.checked ? null : when.value.trim(), at: once.checked ? when.value.trim() : null,
        };
        const call = isNew ? () => api("POST", "/tasks", { name: name.value.trim(), ...body })
          : () => api("PUT", `/tasks/${enc(task.name)}`, body);
        const done = await busy(save, call, (saved) => `${saved.name} saved: ${saved.description}`, () => true);
        if (!done.ok) { formError.textContent = done.error.message; return; }
        await loadList();
        openEditor(done.value);
      },
    },
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "task-name" }, "Name"), name),
      h("div", { class: "field" }, h("label", { for: "task-type" }, "Type"), type),
      h("div", { class: "field" }, valueLabel, value)),
    h("div", { class: "row" },
      h("div", { class: "field grow" }, whenLabel, when),
      h("div", { class: "field" }, h("label", { for: "task-zone" }, "Time zone"), zone,
        h("datalist", { id: "task-zones" }, ZONES.map((z) => h("option", { value: z })))),
      h("div", { class: "field check" }, once, h("label", { for: "task-once" }, "Once"))),
    whenHint,
    h("div", { class: "preview" }, h("h3", {}, "Next five runs"), previewBox),
    h("div", { class: "field" }, h("label", { for: "task-meta" }, "Meta (JSON)"), meta,
      h("p", { class: "muted hint", id: "task-meta-hint" },
        "message: {channel, data}; function: {data}; http: {method, headers, ct, data}.")),
    metaError,
    h("div", { class: "row" },
      h("div", { class: "field" }, h("label", { for: "task-overlap" }, "When the previous run is still going"), overlap),
      h("div", { class: "field" }, h("label", { for: "task-catchup" }, "Runs missed while the server was down"), catchup)),
    formError,
    h("div", { class: "buttons" }, save,
      h("button", { type: "button", class: "secondary", onclick: () => { editorBox.hidden = true; fill(editorBox); } },
        "Close"),
      !isNew && h("button", {
        type: "button", class: "secondary danger",
        onclick: async (event) => {
          if (!window.confirm(`Delete the task ${task.name} and its history?`)) return;
          const done = await busy(event.target, () => api("DELETE", `/tasks/${enc(task.name)}`), `${task.name} deleted`);
          if (done.ok) { editorBox.hidden = true; fill(editorBox); historyBox.hidden = true; fill(historyBox); loadList(); }
        },
      }, "Delete")));

    relabel();
    fill(editorBox, h("h2", { id: "task-editor-title" }, isNew ? "New task" : `Task ${task.name}`), form);
    editorBox.hidden = false;
    preview();
    (isNew ? name : when).focus();
  }

  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Tasks"),
      h("button", { type: "button", id: "new-task", onclick: () => openEditor(null) }, "New task")),
    editorBox,
    h("section", { class: "card", "aria-labelledby": "task-list-title" }, h("h2", { id: "task-list-title" }, "All tasks"),
      h("p", { class: "muted" }, "Next runs are shown in each task's own time zone."),
      listBox),
    historyBox);
  await loadList();
}
