// The Users page: the app's users (never tokens or hashes), paged; add one, change a role, remove one.

import { api, session } from "./api.js";
import { fill, h } from "./dom.js";
import { busy, field, timeEl } from "./ui.js";

const PAGE_SIZE = 20;
const ROLES = [[0, "member (0)"], [50, "account admin (50)"], [100, "root (100)"]];

function roleSelect(attrs, role) {
  const options = ROLES.some(([value]) => value === role) ? ROLES : [...ROLES, [role, `custom (${role})`]];
  return h("select", attrs, options.map(([value, label]) => h("option", { value, selected: value === role }, label)));
}

/** Render the Users page into `main`. */
export async function renderUsers(main) {
  const listBox = h("div", { id: "user-list" });
  let page = 1;

  async function load() {
    const found = await api("GET", `/users?page=${page}&size=${PAGE_SIZE}`);
    const pages = Math.max(1, Math.ceil(found.total / PAGE_SIZE));
    const me = session().email;
    fill(listBox,
      h("p", { class: "muted", id: "user-total" }, `${found.total} user${found.total === 1 ? "" : "s"}`),
      h("div", { class: "paged" }, h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Users" },
        h("table", { id: "user-table" },
          h("caption", { class: "offscreen" }, "The app's users, oldest first"),
          h("thead", {}, h("tr", {}, ["Email", "Role", "Account", "Since", ""].map((head) => h("th", { scope: "col" }, head)))),
          h("tbody", {}, found.results.map((user) => {
            const self = user.email === me;
            const role = roleSelect({
              "aria-label": `Role of ${user.email}`, disabled: self,
              onchange: async (event) => {
                const value = Number(event.target.value);
                const done = await busy(event.target, () => api("PUT", `/users/${user.id}`, { role: value }),
                  `${user.email} is now ${ROLES.find(([v]) => v === value)?.[1] || value}`);
                if (!done.ok) event.target.value = String(user.role);
                else user.role = value;
              },
            }, user.role);
            return h("tr", {},
              h("td", { "data-label": "Email", class: "wrap" }, user.email, self ? h("span", { class: "tag" }, "you") : ""),
              h("td", { "data-label": "Role" }, role),
              h("td", { "data-label": "Account" }, h("code", { title: user.accountId }, user.accountId.slice(0, 8))),
              h("td", { "data-label": "Since" }, timeEl(user.created)),
              h("td", { "data-label": "" }, self ? "" : h("button", {
                type: "button", class: "secondary danger", "aria-label": `Remove ${user.email}`,
                onclick: async (event) => {
                  if (!window.confirm(`Remove ${user.email}? Their documents stay.`)) return;
                  const done = await busy(event.target, () => api("DELETE", `/users/${user.id}`), `${user.email} removed`);
                  if (done.ok) load();
                },
              }, "Remove")));
          }))))),
      pages > 1 && h("div", { class: "pager" },
        h("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => { page -= 1; load(); } },
          "Previous"),
        h("span", {}, `Page ${page} of ${pages}`),
        h("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => { page += 1; load(); } },
          "Next")));
  }

  const formError = h("p", { class: "error", role: "alert", id: "user-form-error" });
  const form = h("form", {
    class: "row", "aria-label": "Add a user",
    onsubmit: async (event) => {
      event.preventDefault();
      formError.textContent = "";
      const body = { email: form.elements.email.value.trim(), password: form.elements.password.value,
        role: Number(form.elements.role.value) };
      const done = await busy(form.querySelector("button"), () => api("POST", "/users", body),
        (user) => `${user.email} added`, () => true);
      if (!done.ok) { formError.textContent = done.error.message; return; }
      form.reset();
      load();
    },
  },
  field("Email", { id: "user-email", name: "email", type: "email", required: true, autocomplete: "off" }),
  field("Password", { id: "user-password", name: "password", type: "password", required: true,
    autocomplete: "new-password" }),
  h("div", { class: "field" }, h("label", { for: "user-role" }, "Role"), roleSelect({ id: "user-role", name: "role" }, 50)),
  h("div", { class: "field end" }, h("button", { type: "submit" }, "Add user")));

  fill(main,
    h("h1", {}, "Users"),
    h("section", { class: "card", "aria-labelledby": "add-user-title" },
      h("h2", { id: "add-user-title" }, "Add a user"),
      h("p", { class: "muted" }, "Each user added here gets an account of its own, as with /register."),
      form, formError),
    h("section", { class: "card", "aria-labelledby": "users-title" },
      h("h2", { id: "users-title" }, "All users"), listBox));
  await load();
}
