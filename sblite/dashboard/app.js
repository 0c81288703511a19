// The dashboard shell: find out whether we are signed in, then show a page (chosen by the URL's #hash).

import { api, ApiError, session, setSession } from "./api.js";
import { announce, fill, h } from "./dom.js";
import { renderData } from "./data.js";
import { renderFunctions } from "./functions.js";
import { renderMail } from "./mail.js";
import { renderOverview } from "./overview.js";
import { renderRealtime } from "./realtime.js";
import { renderSignIn } from "./signin.js";
import { renderTasks } from "./tasks.js";
import { renderUsers } from "./users.js";

// Later pages register here: hash → [nav label, render(main)].
const PAGES = {
  overview: ["Overview", renderOverview],
  data: ["Data", renderData],
  users: ["Users", renderUsers],
  functions: ["Functions", renderFunctions],
  tasks: ["Tasks", renderTasks],
  realtime: ["Realtime", renderRealtime],
  mail: ["Mail", renderMail],
};
const DEFAULT_PAGE = "overview";

const root = document.getElementById("app");

function pageName() {
  const name = window.location.hash.replace(/^#\/?/, "");
  return name in PAGES ? name : DEFAULT_PAGE;
}

function shell(current) {
  const main = h("main", { id: "main", tabindex: "-1" });
  const nav = h("nav", { "aria-label": "Pages" }, h("ul", {}, Object.entries(PAGES).map(([name, [label]]) =>
    h("li", {}, h("a", { href: `#/${name}`, "aria-current": name === current ? "page" : false }, label)))));
  const header = h("header", { class: "top" },
    h("a", { class: "brand", href: "#/overview" }, h("img", { src: "/_/icon.svg", alt: "", width: 24, height: 24 }),
      "sblite"),
    nav,
    h("div", { class: "who" },
      h("span", { class: "muted", id: "who" }, session().email),
      h("button", { type: "button", class: "secondary", id: "sign-out", onclick: signOut }, "Sign out")));
  fill(root, header, main);
  return main;
}

async function show() {
  const name = pageName();
  document.getElementById("status").textContent = "";  // what the last page said is not about this one
  const main = shell(name);
  document.title = `${PAGES[name][0]} · sblite`;
  try {
    await PAGES[name][1](main);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signIn("Your session has ended: sign in again.");
    fill(main, h("h1", {}, PAGES[name][0]), h("p", { class: "error", role: "alert" }, err.message));
  }
}

function signIn(notice = "") {
  setSession(null);
  document.title = "Sign in · sblite";
  const main = h("main", { id: "main", tabindex: "-1" });
  fill(root, main);
  renderSignIn(main, () => show(), notice);
}

async function signOut() {
  try {
    await api("DELETE", "/_/session");
  } catch (err) {
    announce(`Could not sign out: ${err.message}`, "error");
    return;
  }
  signIn();
  announce("Signed out");
}

async function boot() {
  window.addEventListener("hashchange", () => { if (session()) show(); });
  try {
    setSession(await api("GET", "/_/session"));
  } catch (err) {
    return signIn(err.status === 401 || err.status === undefined ? "" : err.message);
  }
  show();
}

boot();
