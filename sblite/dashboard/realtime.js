// The Realtime page: channels with members now, a live view of one channel's frames (the page
// joins it over a WebSocket, signed in as the admin) with a test publisher, and the channel rules.

import { api, session } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { busy, field, pagedTable } from "./ui.js";

const enc = encodeURIComponent;
const MAX_FRAMES = 200;

/** A rule in words. */
export function ruleWords(rule) {
  return [
    rule.auth ? "signed-in users may join" : "anyone may join, even without a token",
    rule.publish === "server" ? "only the server publishes (functions, tasks, root)" : "members may publish",
    rule.history ? `the last ${rule.history} message${rule.history === 1 ? " is" : "s are"} kept and replayed on join`
      : "no history is kept",
  ].join("; ");
}

function clock(date = new Date()) {
  return date.toLocaleTimeString([], { hour12: false });
}

/** Render the Realtime page into `main`. */
export async function renderRealtime(main) {
  const channelsBox = h("div", { id: "live-channels" });
  const rulesBox = h("div", { id: "rules" });
  const frames = h("ol", { id: "frames", class: "frames" });
  const state = h("p", { id: "live-state", class: "muted", "aria-live": "polite" }, "Not watching a channel.");
  const channelInput = h("input", { id: "live-channel", name: "channel", required: true, autocomplete: "off",
    spellcheck: "false", value: "lobby" });
  const watchButton = h("button", { type: "submit" }, "Watch");
  const leaveButton = h("button", { type: "button", class: "secondary", disabled: true, onclick: () => stop("Stopped.") },
    "Stop");
  let socket = null;
  let sid = "";
  let watching = "";

  function addFrame(frame) {
    const mine = frame.sid && frame.sid === sid;
    let data = frame.data;
    try { data = JSON.stringify(JSON.parse(data), null, 1); } catch { /* shown as sent */ }
    frames.append(h("li", { class: `frame frame-${frame.type === "error" ? "error" : "normal"}` },
      h("span", { class: "muted" }, clock()), " ",
      h("strong", {}, frame.type),
      frame.history ? h("span", { class: "tag" }, "earlier") : "",
      frame.sid ? h("span", { class: "muted" }, ` from ${mine ? "this page" : frame.sid.slice(0, 8)}`) : "",
      data !== undefined && data !== "" ? h("code", { class: "frame-data" }, String(data)) : ""));
    while (frames.childElementCount > MAX_FRAMES) frames.firstElementChild.remove();
  }

  function stop(message) {
    if (socket) { socket.onclose = null; socket.close(); }
    socket = null;
    watching = "";
    leaveButton.disabled = true;
    watchButton.disabled = false;
    state.textContent = message;
  }

  async function watch(channel) {
    stop("Connecting…");
    watchButton.disabled = true;
    fill(frames);
    let token;
    try {
      // The admin's session token, through the root API: StaticBackend's root token is user|account|token.
      const info = await api("GET", "/overview");
      token = await api("GET", `/sudogettoken/${enc(info.rootToken.split("|")[1])}`);
    } catch (err) {
      stop(`Could not sign the live view in: ${err.message}`);
      return;
    }
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${window.location.host}/ws?sbpk=${enc(session().pk)}`);
    socket = ws;
    const send = (type, data) => ws.send(JSON.stringify({ sid, token, type, data }));
    ws.onmessage = (event) => {
      if (!main.isConnected) { stop(""); return; }
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "init") { sid = frame.data; send("auth", token); return; }
      if (frame.type === "token") { send("join", channel); return; }  // never shown: it is the token
      if (frame.type === "ok" && frame.data === channel && !watching) {
        watching = channel;
        leaveButton.disabled = false;
        watchButton.disabled = false;
        state.textContent = `Watching ${channel}: frames appear below as they arrive.`;
        announce(`Watching ${channel}`);
        loadChannels();
        return;
      }
      addFrame(frame);
      if (frame.type === "error" && !watching) stop(`Could not join ${channel}: ${frame.data}`);
    };
    ws.onclose = () => stop(watching ? `The connection to ${watching} closed.` : "The connection closed.");
    ws.onerror = () => { state.textContent = "The realtime connection failed."; };
  }

  async function loadChannels() {
    const live = await api("GET", "/realtime/channels");
    fill(channelsBox, pagedTable("live-table", "Channels with members", [
      ["Channel", (c) => h("code", {}, c.channel)],
      ["Members", (c) => String(c.members)],
      ["Rule", (c) => h("span", {}, h("code", {}, c.rule.name), " ", ruleWords(c.rule))],
      ["", (c) => h("button", { type: "button", class: "secondary", "aria-label": `Watch ${c.channel}`,
        onclick: () => { channelInput.value = c.channel; watch(c.channel); } }, "Watch")],
    ], live, 20, "No channel has members right now."));
  }

  async function loadRules() {
    const rules = await api("GET", "/channels");
    fill(rulesBox, pagedTable("rules-table", "Channel rules", [
      ["Name or pattern", (r) => h("code", {}, r.name)],
      ["Means", (r) => ruleWords(r)],
      ["", (r) => h("div", { class: "buttons" },
        h("button", { type: "button", class: "secondary", "aria-label": `Edit the rule ${r.name}`,
          onclick: () => editRule(r) }, "Edit"),
        h("button", { type: "button", class: "secondary danger", "aria-label": `Delete the rule ${r.name}`,
          onclick: async (event) => {
            if (!window.confirm(`Delete the rule ${r.name}?`)) return;
            const done = await busy(event.target, () => api("DELETE", `/channels/${enc(r.name)}`), `Rule ${r.name} deleted`);
            if (done.ok) { loadRules(); loadChannels(); }
          } }, "Delete"))],
    ], rules, 20, "No rules stored: every channel needs a signed-in member, members publish, nothing is kept."));
  }

  const ruleForm = h("form", {
    class: "stack", id: "rule-form", "aria-label": "Set a channel rule",
    onsubmit: async (event) => {
      event.preventDefault();
      const form = event.target;
      const name = form.elements.name.value.trim();
      const body = { auth: form.elements.auth.checked, publish: form.elements.publish.value,
        history: Number(form.elements.history.value || 0) };
      const done = await busy(form.querySelector("button[type=submit]"),
        () => api("PUT", `/channels/${enc(name)}`, body), `Rule ${name} saved`);
      if (done.ok) { loadRules(); loadChannels(); }
    },
  },
  h("div", { class: "row" },
    field("Channel name or pattern", { id: "rule-name", name: "name", required: true, autocomplete: "off",
      spellcheck: "false", placeholder: "lobby or private-*" }),
    field("Who may publish", { id: "rule-publish", name: "publish" }, "select",
      h("option", { value: "members" }, "Members (chan_in)"),
      h("option", { value: "server" }, "Only the server")),
    field("History kept (0 to 1000)", { id: "rule-history", name: "history", type: "number", min: 0, max: 1000,
      value: 0 })),
  h("div", { class: "field check" }, h("input", { type: "checkbox", id: "rule-auth", name: "auth", checked: true }),
    h("label", { for: "rule-auth" }, "Only signed-in connections may join")),
  h("div", { class: "buttons" }, h("button", { type: "submit" }, "Save rule")));

  function editRule(rule) {
    ruleForm.elements.name.value = rule.name;
    ruleForm.elements.publish.value = rule.publish;
    ruleForm.elements.history.value = String(rule.history);
    ruleForm.elements.auth.checked = rule.auth;
    ruleForm.elements.name.focus();
  }

  const publishForm = h("form", {
    class: "row", "aria-label": "Publish a test message",
    onsubmit: async (event) => {
      event.preventDefault();
      const form = event.target;
      const channel = watching || channelInput.value.trim();
      const body = { channel, type: form.elements.type.value.trim(), data: form.elements.data.value };
      await busy(form.querySelector("button"), () => api("POST", "/publish-message", body),
        `Published ${body.type} on ${channel}`);
    },
  },
  field("Type", { id: "pub-type", name: "type", required: true, value: "chan_out", autocomplete: "off", spellcheck: "false" }),
  field("Data", { id: "pub-data", name: "data", autocomplete: "off", spellcheck: "false", value: "hello from the dashboard" }),
  h("div", { class: "field end" }, h("button", { type: "submit", class: "secondary" }, "Publish")));

  window.addEventListener("hashchange", () => stop(""), { once: true });

  fill(main,
    h("h1", {}, "Realtime"),
    h("section", { class: "card", "aria-labelledby": "live-title" },
      h("h2", { id: "live-title" }, "Live view"),
      h("form", { class: "row", "aria-label": "Watch a channel", onsubmit: (event) => {
        event.preventDefault();
        watch(channelInput.value.trim());
      } },
      h("div", { class: "field grow" }, h("label", { for: "live-channel" }, "Channel"), channelInput),
      h("div", { class: "field end buttons" }, watchButton, leaveButton)),
      state,
      h("div", { class: "frames-box", role: "log", "aria-label": "Frames received", tabindex: "0" }, frames),
      h("h3", {}, "Publish a test message"),
      h("p", { class: "muted" }, "Sent as root with POST /publish-message to the channel watched (or named above): " +
        "its members and the functions it triggers receive it."),
      publishForm),
    h("section", { class: "card", "aria-labelledby": "channels-title" },
      h("div", { class: "page-head" }, h("h2", { id: "channels-title" }, "Channels with members"),
        h("button", { type: "button", class: "secondary", onclick: (event) => busy(event.target, loadChannels) },
          "Refresh")),
      h("p", { class: "muted" }, "Connections joined to each channel now; this page's live view counts as one."),
      channelsBox),
    h("section", { class: "card", "aria-labelledby": "rules-title" },
      h("h2", { id: "rules-title" }, "Channel rules"),
      h("p", { class: "muted" }, "An exact name wins over patterns; among patterns the longest match wins."),
      ruleForm, rulesBox));
  await Promise.all([loadChannels(), loadRules()]);
}
