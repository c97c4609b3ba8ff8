"""Open the Snakemake report in headless Chromium, as a reader would: every category,
every result's view button, and what the main pane then shows. A small harness page holds
the report in a same-origin iframe (file access allowed) and clicks through it."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")

_HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="report" src="REPORT_URL" style="width:1400px;height:900px;border:0"></iframe>
<pre id="found"></pre>
<script>
const frame = document.getElementById("report");
const pause = ms => new Promise(done => setTimeout(done, ms));
const label = element => element.textContent.trim();
frame.onload = async () => {
  await pause(1500);
  const doc = frame.contentDocument;
  const sidebar = () => doc.querySelector("nav");
  const mainPane = () => sidebar().nextElementSibling;
  const click = (selector, name) =>
    [...sidebar().querySelectorAll(selector)].find(a => label(a) === name).click();
  const home = async () => { click("a", "Results"); await pause(300); };
  const open = async path => {
    for (const name of path) { click("a", name); await pause(500); }
  };
  const links = [...sidebar().querySelectorAll("a")].map(label);
  const categories = links.slice(links.indexOf("About") + 1);
  const found = {categories, results: {}};
  const record = async path => {
    for (const row of [...sidebar().querySelectorAll("tbody tr")]) {
      const name = label(row.querySelector("td"));
      row.querySelector("a[iconname=eye]").click();
      await pause(800);
      const images = [...mainPane().querySelectorAll("img")]
        .filter(img => img.src.startsWith("data:image/png") && img.naturalWidth > 0);
      found.results[name] = {path, images: images.length,
                             frames: mainPane().querySelectorAll("iframe").length,
                             width: images.length ? images[0].naturalWidth : 0};
    }
  };
  for (const category of categories) {
    await open([category]);
    const subcategories = [...sidebar().querySelectorAll("div.p-3 ul a")].map(label);
    if (!subcategories.length) await record([category]);
    for (const subcategory of subcategories) {
      await home();
      await open([category, subcategory]);
      await record([category, subcategory]);
    }
    await home();
  }
  // End on the result asked for, so that a screenshot shows it.
  const shown = found.results[SHOW];
  if (shown) {
    await open(shown.path);
    [...sidebar().querySelectorAll("tbody tr")]
      .find(row => label(row.querySelector("td")) === SHOW)
      .querySelector("a[iconname=eye]").click();
  }
  document.getElementById("found").textContent = JSON.stringify(found);
};
</script></body></html>
"""


def _chromium(harness: Path, *args: str) -> str:
    command = [CHROMIUM, "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
               "--virtual-time-budget=120000", *args, harness.as_uri()]
    return subprocess.run(command, capture_output=True, text=True, check=True,
                          timeout=300).stdout


def browse_report(report: Path, workdir: Path, show: str, screenshot: Path) -> dict:
    """{"categories": [...], "results": {file: {path, images, frames, width}}} as rendered,
    and a screenshot of the report showing the result `show`."""
    harness = workdir / "report_harness.html"
    harness.write_text(_HARNESS.replace("REPORT_URL", report.resolve().as_uri())
                       .replace("SHOW", json.dumps(show)))
    dom = _chromium(harness, "--dump-dom")
    found = re.search(r'<pre id="found">(.*?)</pre>', dom, re.S)
    if found is None or not found.group(1):
        raise AssertionError(f"the report did not render: {dom[-2000:]}")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    _chromium(harness, f"--screenshot={screenshot.resolve()}", "--window-size=1400,900")
    return json.loads(html.unescape(found.group(1)))
