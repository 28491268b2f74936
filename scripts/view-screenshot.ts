// Screenshot of a running live view, as a person sees it, with Debian's Chromium (no
// browser download): for docs/live-view.png and for checking the page by eye.
//
//   node bin/perceptd.js run --config config/demo.yaml --set view.enabled=true &
//   node --import tsx scripts/view-screenshot.ts [URL] [OUT.png]
// (defaults: http://127.0.0.1:9465 and live-view.png)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.argv[2] ?? "http://127.0.0.1:9465";
const out = process.argv[3] ?? "live-view.png";
const profile = await mkdtemp(join(tmpdir(), "perceptd-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1320, height: 760 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  // A frame in every tile and the first state poll answered.
  // (a string: it is evaluated in the page, where the DOM types this file is not compiled with live)
  await page.waitForFunction(
    `[...document.querySelectorAll(".tile img")].every((i) => i.naturalWidth > 0) && document.querySelector(".badge").textContent !== "…"`,
    undefined,
    { timeout: 30_000 },
  );
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await rm(profile, { recursive: true, force: true });
}
