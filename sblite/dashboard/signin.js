// The sign-in page: the admin's email and password, or the root token.

import { api, setSession } from "./api.js";
import { fill, h } from "./dom.js";

function field(label, attrs) {
  const id = `f-${attrs.name}`;
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, ...attrs }));
}

/** Show the sign-in forms in `main`; `done(session)` runs once signed in. */
export function renderSignIn(main, done, notice = "") {
  const error = h("p", { class: "error", role: "alert", id: "signin-error" });
  if (notice) error.textContent = notice;

  async function submit(event, body) {
    event.preventDefault();
    const button = event.target.querySelector("button[type=submit]");
    button.disabled = true;
    error.textContent = "";
    try {
      const found = await api("POST", "/_/session", body);
      setSession(found);
      done(found);
    } catch (err) {
      error.textContent = err.status === 429 ? `Too many attempts. ${err.message}` : err.message;
      button.disabled = false;
    }
  }

  const passwordForm = h("form", {
    class: "stack", "aria-label": "Sign in with email and password",
    onsubmit: (event) => {
      const form = event.target;
      const body = { email: form.email.value, password: form.password.value };
      if (form.pk.value.trim()) body.pk = form.pk.value.trim();
      submit(event, body);
    },
  },
  field("Admin email", { name: "email", type: "email", autocomplete: "username", required: true }),
  field("Password", { name: "password", type: "password", autocomplete: "current-password", required: true }),
  h("details", {}, h("summary", {}, "Another app on this server"),
    field("Public key of the app", { name: "pk", type: "text", autocomplete: "off", spellcheck: "false" })),
  h("button", { type: "submit" }, "Sign in"));

  const tokenForm = h("form", {
    class: "stack", "aria-label": "Sign in with the root token",
    onsubmit: (event) => submit(event, { token: event.target.token.value }),
  },
  field("Root token", { name: "token", type: "password", autocomplete: "off", required: true }),
  h("button", { type: "submit" }, "Sign in with the token"));

  fill(main, h("section", { class: "card signin", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to sblite"),
    h("p", { class: "muted" }, "Use the admin email and password printed when the server created the app."),
    error,
    passwordForm,
    h("details", { class: "alt" }, h("summary", {}, "Use the root token instead"), tokenForm)));
  passwordForm.email.focus();
}
