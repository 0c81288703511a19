// The realtime-event example: a signed-in page loads the stored events, joins "updates" and shows
// each `event` as it arrives; posting calls the `post_event` web function, which stores the message
// and publishes it. The channel rule (auth: true) refuses a page that joins without signing in.
import { Backend } from "@staticbackend/js";

// "dev" is http://localhost:8099, where `make serve` listens; ?api=<url> points the page elsewhere.
const API = new URLSearchParams(location.search).get("api") || "dev";
const CHANNEL = "updates";
const COLLECTION = "events_774_"; // where fn.js stores each message

const bkn = new Backend("dev_memory_pk", API);
const $ = (id) => document.getElementById(id);
let token = "";
let anonymous = false;
let joining = false;

/** One event in the list, built as text. */
function showEvent(doc, live) {
  const li = document.createElement("li");
  li.className = live ? "event live" : "event";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = String(doc.message ?? "");
  const when = document.createElement("span");
  when.className = "when";
  when.textContent = new Date(doc.postedOn || Date.now()).toLocaleTimeString();
  li.append(text, when);
  $("events").append(li);
  li.scrollIntoView({ block: "nearest" });
}

async function loadStored() {
  const res = await bkn.query(token, COLLECTION, [["channel", "==", CHANNEL]], { size: 50, desc: true });
  if (!res.ok) {
    $("status").textContent = `Could not load the stored events: ${res.content}`;
    return;
  }
  for (const doc of (res.content.results || []).reverse()) showEvent(doc, false);
}

function join() {
  joining = true;
  bkn.send("join", CHANNEL);
}

function onMessage(pl) {
  if (pl.type === "joined" && pl.data === bkn.wsId) {
    $("status").textContent = `Joined ${CHANNEL}: new events appear below as they are posted.`;
    $("compose").hidden = false;
  } else if (pl.type === "event" && pl.channel === CHANNEL) {
    try {
      showEvent(JSON.parse(pl.data), true);
    } catch {
      // not one of post_event's messages
    }
  } else if (pl.type === "error") {
    if (anonymous && !joining) {
      join(); // the session token was refused (there is none): try the channel anyway
      return;
    }
    $("status").setAttribute("role", "alert");
    $("status").className = "status error";
    $("status").textContent = `Refused: ${pl.data}`;
    $("again").hidden = !anonymous;
  }
}

function open(title) {
  $("signin").hidden = true;
  $("feed").hidden = false;
  $("compose").hidden = true;
  $("feed-title").textContent = title;
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
  token = res.content;
  open(`updates · signed in as ${email}`);
  await loadStored();
  bkn.connect(token, join, onMessage);
});

$("anonymous").addEventListener("click", () => {
  anonymous = true;
  open("updates · not signed in");
  bkn.connect("", join, onMessage);
});

$("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const message = $("message").value.trim();
  if (!message) return;
  $("post-error").textContent = "";
  const res = await bkn.execFunction(token, "post_event", { channel: CHANNEL, message });
  if (!res.ok) {
    $("post-error").textContent = String(res.content);
    return;
  }
  $("message").value = "";
});
