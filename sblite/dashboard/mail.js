// The Mail page: the outbox (queued, sent, parked, or kept when no SMTP server is set), newest first,
// filtered by status and paged; a mail's headers and bodies shown as text; replay for parked mail.

import { api } from "./api.js";
import { fill, h } from "./dom.js";
import { busy, timeEl } from "./ui.js";

const PAGE_SIZE = 20;
const STATUSES = [["", "All"], ["queued", "Queued"], ["sent", "Sent"], ["parked", "Parked"], ["kept", "Kept (not sent)"]];
const KIND = { sent: "ok", parked: "bad", queued: "muted", kept: "muted" };

function statusCell(mail) {
  return h("span", { class: KIND[mail.status] || "muted" }, mail.status);
}

/** Who sent it: root, a magic link, or a function (by name when it still exists). */
function originText(origin, functionNames) {
  if (!origin.startsWith("function:")) return origin === "sudo" ? "root (/sudo/sendmail)" : origin;
  const id = origin.slice("function:".length);
  return `function ${functionNames.get(id) || id}`;
}

function recipient(mail) {
  return mail.toName ? `${mail.toName} <${mail.to}>` : mail.to;
}

/** Render the Mail page into `main`. */
export async function renderMail(main) {
  const listBox = h("div", { id: "mail-list" });
  const notice = h("div", { id: "mail-delivery" });
  const detail = h("section", { id: "mail-detail", class: "card", "aria-labelledby": "mail-detail-title", hidden: true });
  const filter = h("select", { id: "mail-status", onchange: () => { page = 1; load(); } },
    STATUSES.map(([value, label]) => h("option", { value }, label)));
  let page = 1;
  let delivering = false;
  let functionNames = new Map();

  function canReplay(mail) {
    return delivering && (mail.status === "parked" || mail.status === "kept");
  }

  async function replay(button, mail) {
    const done = await busy(button, () => api("POST", `/mail/outbox/${encodeURIComponent(mail.id)}/replay`, {}),
      `Mail to ${mail.to} queued again`);
    if (done.ok) { await load(); if (!detail.hidden) open(done.value.id); }
  }

  async function open(id) {
    const [mail, functions] = await Promise.all([api("GET", `/mail/outbox/${encodeURIComponent(id)}`),
      api("GET", "/fn")]);
    functionNames = new Map(functions.map((fn) => [fn.id, fn.name]));
    const row = (label, value) => h("div", { class: "key" }, h("dt", {}, label), h("dd", { class: "wrap" }, value || "—"));
    fill(detail,
      h("div", { class: "page-head" }, h("h2", { id: "mail-detail-title" }, mail.subject),
        h("div", { class: "buttons" },
          canReplay(mail) && h("button", { type: "button", onclick: (event) => replay(event.target, mail) }, "Replay"),
          h("button", { type: "button", class: "secondary", onclick: () => { detail.hidden = true; fill(detail); } },
            "Close"))),
      h("dl", { class: "keys" },
        row("Status", statusCell(mail)),
        row("From", mail.fromName ? `${mail.fromName} <${mail.from}>` : mail.from),
        row("To", recipient(mail)),
        row("Reply-To", mail.replyTo),
        row("Sent by", originText(mail.origin, functionNames)),
        row("Queued", timeEl(mail.created)),
        row("Delivered", mail.sent ? timeEl(mail.sent) : ""),
        row("Attempts", String(mail.attempts)),
        row("Last error", mail.lastError)),
      mail.textBody && h("div", {}, h("h3", {}, "Text"), h("pre", { class: "log", id: "mail-text" }, mail.textBody)),
      mail.htmlBody && h("div", {}, h("h3", {}, "HTML (its source, not rendered)"),
        h("pre", { class: "log", id: "mail-html" }, mail.htmlBody)));
    detail.hidden = false;
    detail.querySelector("h2").setAttribute("tabindex", "-1");
    detail.querySelector("h2").focus();
  }

  async function load() {
    const status = filter.value;
    const found = await api("GET", `/mail/outbox?page=${page}&size=${PAGE_SIZE}${status ? `&status=${status}` : ""}`);
    delivering = found.delivering;
    fill(notice, delivering ? "" : h("p", { class: "warning", role: "note" },
      "No SMTP server is set (smtp_host): mail is not sent. Every message is kept here instead."));
    const pages = Math.max(1, Math.ceil(found.total / PAGE_SIZE));
    if (!found.results.length) {
      fill(listBox, h("p", { class: "muted", id: "mail-total" }, status ? `No ${status} mail.` : "No mail yet."));
      return;
    }
    fill(listBox,
      h("p", { class: "muted", id: "mail-total" }, `${found.total} mail${found.total === 1 ? "" : "s"}`),
      h("div", { class: "paged" }, h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Outbox" },
        h("table", { id: "mail-table" },
          h("caption", { class: "offscreen" }, "Outgoing mail, newest first"),
          h("thead", {}, h("tr", {}, ["Status", "To", "Subject", "When", "Error", ""].map((head) => h("th", { scope: "col" }, head)))),
          h("tbody", {}, found.results.map((mail) => h("tr", {},
            h("td", { "data-label": "Status" }, statusCell(mail)),
            h("td", { "data-label": "To", class: "wrap" }, recipient(mail)),
            h("td", { "data-label": "Subject", class: "wrap" }, h("button", {
              type: "button", class: "link", "aria-label": `Read “${mail.subject}” to ${mail.to}`,
              onclick: () => open(mail.id) }, mail.subject)),
            h("td", { "data-label": "When" }, timeEl(mail.sent || mail.created)),
            h("td", { "data-label": "Error", class: "wrap" }, mail.lastError || ""),
            h("td", { "data-label": "" }, canReplay(mail) ? h("button", {
              type: "button", class: "secondary", "aria-label": `Replay the mail to ${mail.to}: ${mail.subject}`,
              onclick: (event) => replay(event.target, mail) }, "Replay") : ""))))))),
      pages > 1 && h("div", { class: "pager" },
        h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => { page -= 1; load(); } },
          "Previous"),
        h("span", {}, `Page ${page} of ${pages}`),
        h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => { page += 1; load(); } },
          "Next")));
  }

  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Mail"),
      h("div", { class: "buttons" },
        h("div", { class: "field" }, h("label", { for: "mail-status" }, "Show"), filter),
        h("button", { type: "button", class: "secondary", onclick: (event) => busy(event.target, load, "Outbox refreshed") },
          "Refresh"))),
    notice,
    h("section", { class: "card", "aria-labelledby": "outbox-title" }, h("h2", { id: "outbox-title" }, "Outbox"), listBox),
    detail);
  await load();
}
