// The live chat tutorial's client: register or log in, load the earlier messages, join "lobby",
// show who joins and every new message as it arrives. Bundled with esbuild (`npm run build`).
import { Backend } from "@staticbackend/js";

// "dev" is http://localhost:8099, where `make serve` listens; ?api=<url> points the page elsewhere.
const API = new URLSearchParams(location.search).get("api") || "dev";
const CHANNEL = "lobby";
const COLLECTION = "msgs_774_"; // where fn.js stores each message

const bkn = new Backend("dev_memory_pk", API);
const $ = (id) => document.getElementById(id);
let me = "";

/** One line in the message list, built as text. */
function line(kind, parts) {
  const li = document.createElement("li");
  li.className = kind;
  for (const [cls, text] of parts) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
}

function showMessage(msg, mine) {
  const when = msg.sentOn ? new Date(msg.sentOn) : new Date();
  line(mine ? "message mine" : "message", [
    ["who", mine ? "you" : String(msg.user || "someone")],
    ["text", String(msg.text ?? "")],
    ["when", when.toLocaleTimeString()],
  ]);
}

async function loadEarlier(token) {
  const res = await bkn.list(token, COLLECTION, { size: 50, desc: true });
  if (!res.ok) {
    $("status").textContent = `Could not load earlier messages: ${res.content}`;
    return;
  }
  for (const msg of (res.content.results || []).reverse()) showMessage(msg, msg.user === me);
}

function onAuth() {
  bkn.send("join", CHANNEL);
}

function onMessage(pl) {
  if (pl.type === "joined") {
    const self = pl.data === bkn.wsId;
    line("notice", [["text", self ? `You joined ${CHANNEL}.` : `Someone joined ${CHANNEL}.`]]);
    if (self) {
      $("status").textContent = `Connected to ${CHANNEL}.`;
      $("text").focus();
    }
  } else if (pl.type === "chan_out") {
    let msg;
    try {
      msg = JSON.parse(pl.data);
    } catch {
      return;
    }
    showMessage(msg, pl.sid === bkn.wsId);
  } else if (pl.type === "error") {
    $("status").textContent = `Error: ${pl.data}`;
  }
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const action = event.submitter ? event.submitter.value : "login";
  const email = $("email").value.trim();
  const password = $("password").value;
  $("signin-error").textContent = "";
  const res = action === "register" ? await bkn.register(email, password) : await bkn.login(email, password);
  if (!res.ok) {
    $("signin-error").textContent = String(res.content);
    return;
  }
  me = email;
  const token = res.content;
  $("signin").hidden = true;
  $("chat").hidden = false;
  $("chat-title").textContent = `lobby · signed in as ${email}`;
  await loadEarlier(token);
  bkn.connect(token, onAuth, onMessage);
});

$("compose").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  // fn.js parses this JSON, adds sentOn and stores it in msgs_774_.
  bkn.send("chan_in", JSON.stringify({ text, user: me }), CHANNEL);
  $("text").value = "";
});
