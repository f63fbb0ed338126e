"""The report page in a real browser: headless Chromium (Debian's ``chromium``) loads it from disk.

A probe script is added to a copy of the page (the page itself has no script): it records every error event
(script errors, images that fail to decode) from the first line of <head>, and after ``load`` writes into the
DOM what it sees: each <img> complete with a natural width, the task sections, the rows of every table.
``chromium --dump-dom`` prints that DOM; the browser's own console log (``--enable-logging=stderr``) must stay
empty. Skipped where Chromium is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from report_fakes import fabricate_run

from mcbench.commands import report

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium; .ci/run installs it)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]

HEAD_PROBE = """<script>window.__errors=[];
window.addEventListener('error',function(e){var t=e.target;window.__errors.push(String(e.message||
(t&&t.tagName?t.tagName+' '+(t.getAttribute('alt')||'')+' failed':'error')))},true);
var __ce=console.error;console.error=function(){window.__errors.push('console.error: '+[].join.call(arguments,' '));
__ce.apply(console,arguments)};</script>"""
BODY_PROBE = """<script>window.addEventListener('load',function(){
var imgs=[].slice.call(document.images);
var broken=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).map(function(i){return i.alt});
var tables=[].map.call(document.querySelectorAll('table'),function(t){return {cls:t.className,
aspect:t.getAttribute('data-aspect')||'',rows:t.tBodies.length?t.tBodies[0].rows.length:0}});
var clusters=[].map.call(document.querySelectorAll('.cluster-samples'),function(d){return {cluster:+d.dataset.cluster,
size:+d.dataset.size,thumbs:d.querySelectorAll('img').length}});
document.documentElement.setAttribute('data-probe',JSON.stringify({images:imgs.length,broken:broken,
errors:window.__errors,sections:document.querySelectorAll('section.task').length,tables:tables,
clusters:clusters,links:[].map.call(document.links,function(a){return a.getAttribute('href')})}));});</script>"""


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=180)


def open_page(tmp_path: Path, page: Path) -> tuple[dict, str]:
    """(what the probe saw, the browser's console lines) for ``page``, opened through a probed copy."""
    text = page.read_text(encoding="utf-8")
    probed = page.with_name("probe-" + page.name)
    probed.write_text(text.replace("<head>", "<head>" + HEAD_PROBE, 1).replace("</body>", BODY_PROBE + "</body>"),
                      encoding="utf-8")
    proc = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    probed.unlink()
    match = re.search(r'data-probe="([^"]*)"', proc.stdout)
    assert match, f"the probe did not run; chromium said:\n{proc.stderr[-3000:]}"
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return json.loads(html.unescape(match.group(1))), "\n".join(console)


@pytest.fixture(scope="module")
def run_page(tmp_path_factory):
    run = fabricate_run(tmp_path_factory.mktemp("browser"), n=240, history=7)
    return report.render_run(run)


def test_run_page_renders_every_image_and_table_without_errors(tmp_path, run_page):
    seen, console = open_page(tmp_path, run_page)
    assert seen["errors"] == [] and console == ""
    assert seen["broken"] == []
    thumbs = sum(c["thumbs"] for c in seen["clusters"])
    assert seen["images"] == thumbs + 2  # the thumbnails, the loss curve, the PCA map
    assert seen["sections"] == 1
    assert len(seen["clusters"]) == 5
    assert all(c["thumbs"] == min(c["size"], report.PER_CLUSTER) for c in seen["clusters"])
    contingency = {t["aspect"]: t["rows"] for t in seen["tables"] if t["cls"] == "contingency"}
    assert contingency == {"color": 5, "shape": 5}
    assert {t["cls"]: t["rows"] for t in seen["tables"] if t["cls"] in ("names", "summary")} == \
        {"names": 5, "summary": 1}
    assert all(href.startswith(("#", "figures/")) for href in seen["links"])
    for href in seen["links"]:
        if href.startswith("figures/"):
            assert (run_page.parent / href).is_file()


def test_the_probe_sees_a_broken_image(tmp_path, run_page):
    """The check itself works: one corrupted thumbnail is reported, by name."""
    broken = tmp_path / "index.html"
    text = run_page.read_text(encoding="utf-8")
    corrupt = 'src="data:image/jpeg;base64,' + "A" * 20
    broken.write_text(re.sub(r'src="data:image/jpeg;base64,[^"]{20}', corrupt, text, count=1), encoding="utf-8")
    seen, _ = open_page(tmp_path, broken)
    assert len(seen["broken"]) == 1 and seen["broken"][0].startswith("fake_")
    assert any("IMG" in e for e in seen["errors"])


def test_sweep_page_renders_with_its_leaderboard_and_job_links(tmp_path):
    root = tmp_path / "runs"
    sweep = root / "multirun/2026-01-01/00-00-00"
    for job, seed in (("0", 0), ("1", 1)):
        fabricate_run(root, n=120, seed=seed, name=f"multirun/2026-01-01/00-00-00/{job}")
    (sweep / "multirun.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    page = report.render(sweep)
    seen, console = open_page(tmp_path, page)
    assert seen["errors"] == [] and console == "" and seen["broken"] == []
    rows = {t["cls"]: t["rows"] for t in seen["tables"]}
    # the embedded leaderboard has one row per aspect and metric (NMI and RI, the mission's pair)
    assert rows == {"jobs": 2, "swept": 1, "fixed": 1, "leaderboard": 2, "summary": 2}
    assert [h for h in seen["links"] if h.endswith("index.html")] == ["job-0/index.html", "job-1/index.html"]
    job_seen, job_console = open_page(tmp_path, page.parent / "job-1" / "index.html")
    assert job_seen["broken"] == [] and job_seen["errors"] == [] and job_console == ""
    assert job_seen["sections"] == 1 and "../index.html" in job_seen["links"]


def test_screenshot_of_the_page(tmp_path, run_page):
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, "--hide-scrollbars", f"--screenshot={shot}", "--window-size=1280,2000",
                    run_page.as_uri())
    assert shot.is_file(), proc.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colours = im.convert("RGB").resize((64, 100)).getcolors(64 * 100)
        assert len(colours) > 50  # text, tables and images, not a blank page
