// Where JSON text goes wrong, with its line and column: the browser's JSON.parse does not always
// say (Chromium often names only the token). A small scanner of the JSON grammar (RFC 8259).

/** null when `text` is valid JSON, else "what is wrong (line L, column C)". */
export function jsonProblem(text) {
  let i = 0;
  const fail = (what) => {
    const before = text.slice(0, i).split("\n");
    throw new Error(`${what} (line ${before.length}, column ${before[before.length - 1].length + 1})`);
  };
  const space = () => { while (i < text.length && " \t\n\r".includes(text[i])) i += 1; };
  const shown = () => (i >= text.length ? "the end" : `“${text[i]}”`);

  function value() {
    space();
    const c = text[i];
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === "\"") return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, i)) { i += word.length; return; }
    }
    fail(`a value was expected, found ${shown()}${/[A-Za-z_]/.test(c || "") ? " (text needs double quotes)" : ""}`);
  }
  function object() {
    i += 1;
    space();
    if (text[i] === "}") { i += 1; return; }
    for (;;) {
      space();
      if (text[i] !== "\"") fail(`a key in double quotes was expected, found ${shown()}`);
      string();
      space();
      if (text[i] !== ":") fail(`“:” was expected after the key, found ${shown()}`);
      i += 1;
      value();
      space();
      if (text[i] === ",") { i += 1; continue; }
      if (text[i] === "}") { i += 1; return; }
      fail(`“,” or “}” was expected, found ${shown()}`);
    }
  }
  function array() {
    i += 1;
    space();
    if (text[i] === "]") { i += 1; return; }
    for (;;) {
      value();
      space();
      if (text[i] === ",") { i += 1; continue; }
      if (text[i] === "]") { i += 1; return; }
      fail(`“,” or “]” was expected, found ${shown()}`);
    }
  }
  function string() {
    i += 1;
    while (i < text.length && text[i] !== "\"") {
      if (text[i] === "\n") fail("a string must end on its line");
      if (text[i] === "\\") {
        i += 1;
        if (text[i] === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail("\\u needs four hex digits");
          i += 4;
        } else if (!"\"\\/bfnrt".includes(text[i] || "x")) fail("an unknown escape");
      }
      i += 1;
    }
    if (i >= text.length) fail("the string never ends");
    i += 1;
  }
  function number() {
    const found = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (!found) fail(`a number was expected, found ${shown()}`);
    i += found[0].length;
  }

  try {
    value();
    space();
    if (i < text.length) fail(`nothing may follow the value, found ${shown()}`);
    return null;
  } catch (err) {
    return err.message;
  }
}
