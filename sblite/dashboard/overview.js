// The Overview page: keys, counts, recent failed runs, the dev-mode warning and a client snippet.

import { api } from "./api.js";
import { copyButton, fill, h } from "./dom.js";

const COUNTS = [
  ["users", "Users"], ["collections", "Collections"], ["documents", "Documents"],
  ["functions", "Functions"], ["tasks", "Tasks"], ["connections", "Live connections"],
];

function masked(secret) {
  return "•".repeat(12) + secret.slice(-4);
}

function secretRow(label, id, secret) {
  const value = h("code", { id, class: "secret", "data-masked": "true" }, masked(secret));
  const toggle = h("button", {
    type: "button", class: "secondary", "aria-controls": id, "aria-pressed": "false",
    onclick: () => {
      const hidden = value.dataset.masked === "true";
      value.textContent = hidden ? secret : masked(secret);
      value.dataset.masked = String(!hidden);
      toggle.setAttribute("aria-pressed", String(hidden));
      toggle.textContent = hidden ? "Hide" : "Show";
    },
  }, "Show");
  return h("div", { class: "key" }, h("dt", {}, label),
    h("dd", {}, value, h("span", { class: "actions" }, toggle, copyButton(label.toLowerCase(), () => secret))));
}

function failedRuns(runs) {
  if (!runs.length) return h("p", { class: "muted", id: "failed-runs" }, "No failed runs.");
  return h("div", { class: "table-wrap" }, h("table", { id: "failed-runs" },
    h("caption", { class: "offscreen" }, "The five most recent failed function runs"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Function"), h("th", { scope: "col" }, "Started"),
      h("th", { scope: "col" }, "Error"))),
    h("tbody", {}, runs.slice(0, 5).map((run) => h("tr", {},
      h("td", {}, run.name || run.functionId), h("td", {}, h("time", { datetime: run.started }, run.started)),
      h("td", { class: "wrap" }, run.error || (run.output || []).slice(-1)[0] || "failed"))))));
}

/** Render the Overview into `main`. */
export async function renderOverview(main) {
  const [info, runs] = await Promise.all([api("GET", "/overview"), api("GET", "/fn/runs?failed=1")]);
  const url = window.location.origin;
  const snippet = `new Backend("${info.pk}", "${url}")`;
  fill(main,
    h("h1", {}, "Overview"),
    info.devMode && h("div", { class: "warning", id: "dev-warning" },
      h("strong", {}, "Dev mode. "),
      "This server uses StaticBackend's public dev credentials (admin@dev.com / devpw1234 and the dev root " +
      "token alias). Anyone who can reach it can sign in. Start it with --prod before it holds real data."),
    h("section", { "aria-labelledby": "keys-title", class: "card" },
      h("h2", { id: "keys-title" }, "Keys"),
      h("dl", { class: "keys" },
        h("div", { class: "key" }, h("dt", {}, "Public key"),
          h("dd", {}, h("code", { id: "pk" }, info.pk),
            h("span", { class: "actions" }, copyButton("public key", () => info.pk)))),
        secretRow("Root token", "root-token", info.rootToken))),
    h("section", { "aria-labelledby": "counts-title" },
      h("h2", { id: "counts-title" }, "At a glance"),
      h("dl", { class: "counts" }, COUNTS.map(([key, label]) =>
        h("div", { class: "count card", "data-count": key },
          h("dt", {}, label), h("dd", {}, String(info.counts[key])))))),
    h("section", { "aria-labelledby": "runs-title", class: "card" },
      h("h2", { id: "runs-title" }, "Recent failed runs"), failedRuns(runs)),
    h("section", { "aria-labelledby": "client-title", class: "card" },
      h("h2", { id: "client-title" }, "Connect a client"),
      h("p", {}, "With ", h("code", {}, "@staticbackend/js"), ", point the client at this server:"),
      h("pre", {}, h("code", { id: "snippet" }, snippet)),
      h("p", {}, copyButton("snippet", () => snippet))));
}
