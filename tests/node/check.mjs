// Shared by the Node suites: the server URL, and assertions that collect failures instead of
// stopping at the first one. Every suite ends by printing `N passed, M failed`.

export const BASE_URL = process.env.SBLITE_URL;

if (!BASE_URL || BASE_URL.length < 10) {
  // The client treats a region shorter than 10 chars as a staticbackend.dev region name.
  console.error("set SBLITE_URL to the server base URL, e.g. http://127.0.0.1:8099");
  process.exit(2);
}

// The dev server's credentials unless the environment gives a prod server's (tests/test_package.py
// reads them from the banner of `sblite serve --prod`).
export const PK = process.env.SBLITE_PK || "dev_memory_pk";
export const ADMIN_EMAIL = process.env.SBLITE_ADMIN_EMAIL || "admin@dev.com";
export const ADMIN_PASSWORD = process.env.SBLITE_ADMIN_PASSWORD || "devpw1234";
export const ROOT_TOKEN = process.env.SBLITE_ROOT_TOKEN || "safe-to-use-in-dev-root-token";

export const results = { passed: 0, failures: [] };

export function show(value) {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 800 ? text.slice(0, 800) + "…" : text;
}

export function check(condition, message, got, { quiet = true } = {}) {
  if (condition) {
    results.passed++;
    if (!quiet) console.log(`ok   ${message}`);
    return true;
  }
  const detail = got !== undefined || arguments.length > 2 ? `\n      got: ${show(got)}` : "";
  results.failures.push(`${message}${detail}`);
  console.log(`FAIL ${message}${detail}`);
  return false;
}

export function summary() {
  return `${results.passed} passed, ${results.failures.length} failed`;
}

export function eq(actual, expected, message) {
  return check(JSON.stringify(actual) === JSON.stringify(expected), `${message}: expected ${show(expected)}`, actual);
}

/** Runs one area of a suite: prints ok/FAIL for it, turns an exception into a failure; returns fn's value. */
export async function area(name, fn) {
  const before = results.failures.length;
  try {
    const out = await fn();
    console.log(`${results.failures.length === before ? "ok  " : "FAIL"} ${name}`);
    return out;
  } catch (err) {
    check(false, `${name}: unexpected exception`, err && err.stack ? err.stack : err);
    return undefined;
  }
}

/** Runs a suite's `main` under a watchdog, then `cleanup`, prints the summary and exits (1 on any failure). */
export async function runSuite(main, { seconds = 100, cleanup = () => {} } = {}) {
  const finish = (code) => {
    cleanup();
    console.log(summary());
    process.exit(code);
  };
  const watchdog = setTimeout(() => {
    check(false, `suite did not finish within ${seconds} s`);
    finish(1);
  }, seconds * 1000);
  await main();
  clearTimeout(watchdog);
  finish(results.failures.length ? 1 : 0);
}

function randomLetters(n) {
  const alphabet = "abcdefghijklmnopqrstuvwxyz";
  let out = "";
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(Math.random() * alphabet.length)];
  return out;
}

// A per-run tag for names, so a suite can run again on the same database. Letters only:
// digits could look like a `_NNN_` permission suffix.
export const TAG = randomLetters(8);
