"""``mcbench-report``: the HTML page of a real run and of a real sweep, and its bounds on fabricated runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_fakes import fabricate_run

from mcbench import report

FAST = ["encoder=tiny_clip_random", "logger=none", "protocol.n_restarts=2", "progress=false"]


def app(tmp_path: Path, *args: str, multirun: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ, MCBENCH_CACHE=str(tmp_path / "cache"), WANDB_MODE="offline")
    proc = subprocess.run([sys.executable, "-m", "mcbench.cli", *(["-m"] if multirun else []),
                           f"results_file={tmp_path}/runs.csv", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def report_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MCBENCH_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, "-m", "mcbench.report", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def sections(page: str) -> list[str]:
    return re.findall(r'<section class="task".*?</section>', page, flags=re.S)


def thumbs_per_cluster(section: str) -> dict[int, tuple[int, int]]:
    """cluster -> (its size, its thumbnails)."""
    out = {}
    for m in re.finditer(r'<div class="cluster-samples" data-cluster="(\d+)" data-size="(\d+)">(.*?)</div></div>',
                         section, flags=re.S):
        out[int(m.group(1))] = (int(m.group(2)), m.group(3).count('<figure class="thumb"'))
    return out


def contingency_rows(section: str) -> dict[str, int]:
    return {m.group(1): m.group(2).count('<tr class="cluster-row">')
            for m in re.finditer(r'<table class="contingency" data-aspect="([^"]+)">(.*?)</table>', section, re.S)}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One real kmeans_image run on synth_cards (two aspects: number k=13, suits k=4), then `--last`."""
    tmp = tmp_path_factory.mktemp("report-run")
    app(tmp, "method=kmeans_image", "dataset=synth_cards", "dataset.n=60", *FAST)
    proc = report_cli(tmp, "--last")
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp / "outputs").glob("*/*/tasks"))
    assert len(runs) == 1
    return runs[0].parent


def test_report_of_a_real_run_has_one_section_per_task(real_run):
    page = (real_run / "report" / "index.html").read_text(encoding="utf-8")
    tasks = sorted(p.name for p in (real_run / "tasks").iterdir())
    found = sections(page)
    assert len(found) == len(tasks) == 2
    for section, task in zip(found, tasks):
        assert f'id="{task}"' in section
        k = 13 if "-number-" in task else 4
        n_clusters = int(re.search(r'data-clusters="(\d+)"', section).group(1))
        assert n_clusters == k
        # one heat-map per aspect, one row per found cluster
        assert contingency_rows(section) == {"number": n_clusters, "suits": n_clusters}
        per_cluster = thumbs_per_cluster(section)
        assert len(per_cluster) == n_clusters
        for size, shown in per_cluster.values():
            assert shown == min(size, report.PER_CLUSTER)
        assert "No training history" in section  # kmeans_image trains nothing
        assert "PCA" in section and 'alt="PCA map"' in section


def test_report_of_a_real_run_shows_names_config_and_writes_figures(real_run):
    page = (real_run / "report" / "index.html").read_text(encoding="utf-8")
    config = (real_run / ".hydra" / "config.yaml").read_text(encoding="utf-8")
    assert "<h2>Configuration</h2>" in page and report._e(config) in page
    assert "n_restarts: 2" in page
    for task in (real_run / "tasks").iterdir():
        names = report.TaskArtifacts.load(task).names
        for n in names:
            assert f">{report._e(n['word'])}<" in page
        figures = {p.name for p in (real_run / "report" / "figures").glob(f"{task.name}-*.png")}
        assert figures == {f"{task.name}-{kind}.png" for kind in
                           ("contingency-number", "contingency-suits", "samples", "map-pca")}
    # self-contained: no remote resource, no script
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page


@pytest.mark.slow
def test_report_of_a_sweep_links_job_pages_and_embeds_its_leaderboard(tmp_path):
    app(tmp_path, "method=kmeans_image", "dataset=synth_fruit", "dataset.n=40", "seed=0,1", *FAST, multirun=True)
    proc = report_cli(tmp_path, "--last")
    assert proc.returncode == 0, proc.stderr
    sweep = next((tmp_path / "multirun").glob("*/*"))
    page = (sweep / "report" / "index.html").read_text(encoding="utf-8")
    for job in ("0", "1"):
        assert f'href="job-{job}/index.html"' in page
        job_page = (sweep / "report" / f"job-{job}" / "index.html").read_text(encoding="utf-8")
        assert len(sections(job_page)) == 2 and 'href="../index.html"' in job_page
    board = re.search(r'<table class="leaderboard">(.*?)</table>', page, re.S).group(1)
    body = re.findall(r'<tr><td class="l">(\w+)</td>.*?</tr>', board)
    assert body == ["color", "color", "species", "species"]  # a row per aspect and metric (NMI, RI), both seeds in it
    assert board.count("<td>1 × 2</td>") == 4 and "±" in board  # runs: 1 image set × 2 seeds
    assert page.count('<tr class="task-row">') == 4  # the task table: 2 seeds × 2 aspects


def test_page_size_does_not_grow_with_the_number_of_images(tmp_path):
    sizes = {}
    for n in (1000, 10_000):
        run = fabricate_run(tmp_path, n=n, name=f"outputs/2026-01-01/n{n}")
        page = report.render_run(run)
        text = page.read_text(encoding="utf-8")
        sizes[n] = page.stat().st_size
        (section,) = sections(text)
        assert sum(shown for _, shown in thumbs_per_cluster(section).values()) <= 5 * report.PER_CLUSTER
        assert contingency_rows(section) == {"color": 5, "shape": 5}
    assert "5000 of 10000 points" in text
    assert sizes[10_000] < 2_000_000
    assert sizes[10_000] < 1.5 * sizes[1000]


def test_collisions_loss_and_tsne_on_a_fabricated_run(tmp_path):
    run = fabricate_run(tmp_path, n=150, history=8)
    page = report.render_run(run, opts=report.Options(tsne=True, per_cluster=4)).read_text(encoding="utf-8")
    assert "two clusters named &#x27;red&#x27; (clusters 0, 1)" in page
    assert page.count('class="l collide">same name</td>') == 2
    assert 'alt="loss curve"' in page and "8 epochs" in page
    assert 'alt="t-SNE map"' in page
    (section,) = sections(page)
    assert all(shown == min(size, 4) for size, shown in thumbs_per_cluster(section).values())
    figures = {p.name.rsplit("-", 1)[-1] for p in (run / "report" / "figures").iterdir()}
    assert {"loss.png", "pca.png", "tsne.png", "samples.png", "color.png", "shape.png"} <= figures
    assert "FAKE-CONFIG-MARKER" in page


def test_thumbnails_are_a_deterministic_seeded_draw(tmp_path):
    run = fabricate_run(tmp_path, n=300, collide=False)
    first = report.render_run(run, tmp_path / "a").read_text(encoding="utf-8")
    second = report.render_run(run, tmp_path / "b").read_text(encoding="utf-8")
    strip = lambda s: re.sub(r"written \S+", "", s)  # noqa: E731
    assert strip(first) == strip(second)
    assert "No finding" in first
    members = report.sample_members(report.TaskArtifacts.load(next((run / "tasks").iterdir())).partition, 0, 12, 0)
    assert len(members) == 12 and list(members) == sorted(members)


def test_thumbnails_are_downscaled():
    from PIL import Image

    big = Image.new("RGB", (300, 200), "red")
    with Image.open(__import__("io").BytesIO(report.thumbnail(big, 64))) as im:
        assert max(im.size) == 64


@pytest.mark.parametrize("change, message", [
    (('"dataset": "report_fake"', '"dataset": "no_such_dataset"'), "the dataset could not be rebuilt"),
    (('\\"n\\": 80', '\\"n\\": 90'), "does not fit this task (80 images"),
])
def test_a_dataset_that_cannot_be_rebuilt_still_gives_a_page(tmp_path, change, message):
    run = fabricate_run(tmp_path, n=80)
    row_file = next((run / "tasks").iterdir()) / "row.json"
    text = row_file.read_text()
    assert change[0] in text
    row_file.write_text(text.replace(*change))
    config = run / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("name: report_fake", "name: no_such_dataset"
                                                 if "no_such" in change[1] else "name: report_fake"))
    page = report.render_run(run).read_text(encoding="utf-8")
    assert message in page
    assert 'alt="PCA map"' in page and 'alt="loss curve"' in page
    assert '<figure class="thumb"' not in page


def test_last_picks_the_newest_of_outputs_and_multirun(tmp_path):
    fabricate_run(tmp_path, n=50, name="outputs/2026-01-02/10-00-00")
    fabricate_run(tmp_path, n=50, name="outputs/2026-01-01/23-00-00")
    (tmp_path / "outputs" / "wandb" / "offline-run-x").mkdir(parents=True)  # not a run folder
    assert report.find_last(tmp_path) == tmp_path / "outputs/2026-01-02/10-00-00"
    sweep = tmp_path / "multirun/2026-01-02/11-00-00"
    fabricate_run(tmp_path, n=50, name="multirun/2026-01-02/11-00-00/0")
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    assert report.find_last(tmp_path) == sweep
    page = report.render(sweep)
    assert page == sweep / "report" / "index.html" and (sweep / "report" / "job-0" / "index.html").is_file()
    assert "fake_method" in page.read_text(encoding="utf-8")


def test_cli_errors_are_one_clear_line(tmp_path):
    proc = report_cli(tmp_path, "--last")
    assert proc.returncode == 2 and "no run under" in proc.stderr
    proc = report_cli(tmp_path)
    assert proc.returncode == 2 and "--last" in proc.stderr
    proc = report_cli(tmp_path, str(tmp_path))
    assert proc.returncode == 2 and "neither a run folder" in proc.stderr


def test_markdown_tables_become_html():
    md = "# title\n\ntext with `code`\n\n## part\n\n| aspect | a | runs |\n|---|---|---|\n| color | **0.5** | 2 |\n"
    out = report.markdown_to_html(md)
    assert "<h3>title</h3>" in out and "<code>code</code>" in out and "<h4>part</h4>" in out
    assert '<tr><td class="l">color</td><td><b>0.5</b></td><td>2</td></tr>' in out
    assert out.count("<tr>") == 2  # header + one row; the |---| line is dropped


def test_dataset_spec_takes_the_loader_and_the_data_location_from_the_run_config(tmp_path):
    """A row's identity leaves out ``dataset.root`` and names the data (folder-x), not the loader (folder)."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "dataset:\n  name: folder\n  root: ${paths.data_root}/x\n  verify: strict\n"
        "paths:\n  cache_dir: /some/cache\n  data_root: /data\n")
    row = {"dataset": "folder-x", "dataset_params": '{"verify": "warn"}'}
    assert report.dataset_spec(row, tmp_path) == ("folder", {"verify": "warn", "root": "/data/x"}, "/some/cache")
    assert report.dataset_spec(row, tmp_path / "no-config") == ("folder-x", {"verify": "warn"}, None)
