// Building the page from data without innerHTML: h("p", {class: "x"}, "text", child).

/** An element with attributes (on* keys become listeners) and children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat()) if (child) el.append(child);
  return el;
}

/** Say something to everyone, screen readers included (the status line at the bottom). */
export function announce(text, kind = "ok") {
  const status = document.getElementById("status");
  status.dataset.kind = kind;
  status.textContent = text;
  clearTimeout(announce.timer);
  announce.timer = setTimeout(() => { status.textContent = ""; }, 4000);
}

/** Put `text` on the clipboard; true when it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h("textarea", { class: "offscreen", "aria-hidden": "true", tabindex: "-1" }, text);
    document.body.append(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

/** A "Copy" button for the value `get()` returns, announcing the outcome as `what` copied. */
export function copyButton(what, get) {
  return h("button", {
    type: "button", class: "secondary", "aria-label": `Copy ${what}`,
    onclick: async () => announce((await copyText(get())) ? `${what} copied` : `Could not copy the ${what}`),
  }, "Copy");
}
