// Headless Chromium for the browser tests: one launch, pages that record every request, console
// error and Content-Security-Policy violation, and the check that a page stayed clean.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
  });
}

/**
 * A fresh context and page that records requests, failed responses, console errors and CSP
 * violations. `key` is stored as the dashboard's key before any script runs (with `keepKey`, only
 * if the page has none yet, so that a test may change it); `dark` picks the colour scheme.
 */
export async function openPage(browser, { key, keepKey = false, dark, viewport = { width: 1280, height: 800 }, ...opts } = {}) {
  // A fixed locale: the pages format numbers and times with the browser's.
  const scheme = dark === undefined ? {} : { colorScheme: dark ? "dark" : "light" };
  const context = await browser.newContext({ viewport, locale: "en-US", ...scheme, ...opts });
  if (key) {
    await context.addInitScript(
      ([k, keep]) => (keep && localStorage.getItem("pushplot.key")) || localStorage.setItem("pushplot.key", k),
      [key, keepKey],
    );
  }
  // In every page and frame, before its own scripts: a CSP violation becomes a console error.
  await context.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (e) =>
      console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} in ${e.documentURI} (${e.sourceFile || "?"}:${e.lineNumber})`),
    ),
  );
  const page = await context.newPage();
  page.requests = [];
  page.errors = [];
  page.failed = [];
  page.violations = [];
  page.on("request", (r) => page.requests.push(r.url()));
  page.on("response", (r) => r.status() >= 400 && page.failed.push(`${r.status()} ${new URL(r.url()).pathname}`));
  page.on("console", (m) => {
    if (m.type() === "error") page.errors.push(m.text());
    // Chromium's own report of a blocked resource, whatever its level.
    if (/CSP violation|Content Security Policy/i.test(m.text())) page.violations.push(m.text());
  });
  page.on("pageerror", (e) => page.errors.push(`pageerror: ${e.message}`));
  return page;
}

/** No request left 127.0.0.1 and nothing was logged as an error, except what `allow` expects. */
export async function clean(page, allow = []) {
  for (const u of page.requests) {
    const url = new URL(u);
    if (url.protocol === "data:" || url.protocol === "blob:") continue;
    assert.equal(url.hostname, "127.0.0.1", `a request left 127.0.0.1: ${u}`);
  }
  assert.deepEqual(page.violations, [], "Content-Security-Policy violations");
  const errors = page.errors.filter((e) => !allow.some((re) => re.test(e)));
  assert.deepEqual(errors, [], "console errors");
  await page.context().close();
}
