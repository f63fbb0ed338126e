"""``mcbench-report``: the HTML page of a real run and of a real sweep, and its bounds on fabricated runs.

``mcbench`` and ``mcbench-report`` run in this process (same argv, folder and environment as a subprocess);
one test runs ``mcbench-report`` as a real process."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_inprocess import Completed, run_cli
from report_fakes import fabricate_run

from mcbench.commands import report
from mcbench.commands.report import figures

FAST = ["encoder=tiny_clip_random", "logger=none", "protocol.n_restarts=2", "progress=false"]


def app(tmp_path: Path, *args: str, multirun: bool = False, cache: Path | None = None) -> Completed:
    env = {"MCBENCH_CACHE": str(cache or tmp_path / "cache"), "WANDB_MODE": "offline"}
    proc = run_cli(tmp_path, *(["-m"] if multirun else []), f"results_file={tmp_path}/runs.csv", *args, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def report_cli(cwd: Path, *args: str, cache: Path | None = None) -> Completed:
    """``mcbench-report *args`` in ``cwd``, in this process."""
    out, err, code = io.StringIO(), io.StringIO(), 0
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    try:
        os.chdir(cwd)
        os.environ["MCBENCH_CACHE"] = str(cache or cwd / "cache")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                report.main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return Completed(list(args), code, out.getvalue(), err.getvalue())


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
def real_run(tmp_path_factory, cache_dir):
    """One real kmeans_image run on synth_cards (two aspects: number k=13, suits k=4), then `--last`."""
    tmp = tmp_path_factory.mktemp("report-run")
    app(tmp, "method=kmeans_image", "dataset=synth_cards", "dataset.n=60", *FAST, cache=cache_dir)
    proc = report_cli(tmp, "--last", cache=cache_dir)
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
    assert "<h2>Configuration</h2>" in page and report.escape(config) in page
    assert "n_restarts: 2" in page
    for task in (real_run / "tasks").iterdir():
        names = report.TaskArtifacts.load(task).names
        for n in names:
            assert f">{report.escape(n['word'])}<" in page
        figures = {p.name for p in (real_run / "report" / "figures").glob(f"{task.name}-*.png")}
        assert figures == {f"{task.name}-{kind}.png" for kind in
                           ("contingency-number", "contingency-suits", "samples", "map-pca")}
    # self-contained: no remote resource, no script
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page


@pytest.mark.slow
def test_report_of_a_sweep_links_job_pages_and_embeds_its_leaderboard(tmp_path, cache_dir):
    app(tmp_path, "method=kmeans_image,zeroshot_gpt", "dataset=synth_fruit", "dataset.n=40", "seed=0,1", *FAST,
        multirun=True, cache=cache_dir)
    proc = report_cli(tmp_path, "--last", cache=cache_dir)
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
    assert page.count('<tr class="task-row">') == 8  # the task table: 2 methods × 2 seeds × 2 aspects
    # the values swept (from the jobs), not the base config
    swept = re.search(r'<table class="swept">(.*?)</table>', page, re.S).group(1)
    assert re.search(r"<td class=\"l\">method</td><td class=\"l\">kmeans_image, zeroshot_gpt</td>", swept)
    assert re.search(r"<td class=\"l\">seed</td><td class=\"l\">0, 1</td>", swept)
    fixed = re.search(r'<table class="fixed">(.*?)</table>', page, re.S).group(1)
    assert "dataset.n" in fixed and "seed" not in fixed
    # per aspect, the two methods side by side, each with its contingency map and sample grid inlined
    for aspect in ("color", "species"):
        block = page.split(f'<h3 class="aspect-compare">synth_fruit / {aspect}</h3>')[1].split("<h3")[0]
        methods = re.findall(r'<div class="compare-method" data-method="(\w+)">', block)
        assert methods == ["kmeans_image", "zeroshot_gpt"]
        assert block.count('alt="contingency ') == 2 and block.count('alt="samples ') == 2
        assert block.count('src="data:image/png;base64,') == 4
    # titles name the methods, the dataset and the aspects
    assert "<title>mcbench sweep · kmeans_image, zeroshot_gpt · synth_fruit/color, species · " in page
    assert "<title>mcbench report · kmeans_image · synth_fruit/color, species · " in (
        sweep / "report" / "job-0" / "index.html").read_text(encoding="utf-8")


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
    assert report.escape("two clusters named 'red' (clusters 0, 1)") in page
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


def test_the_sweep_leaderboard_is_rendered_from_the_rows_not_through_markdown(tmp_path):
    """Two seeds of one method: the board's cells (mean ± std, runs) come from the rows in memory, the same tables
    as mcbench-leaderboard's Markdown (``board_tables``), escaped; no CSV is written."""
    import pandas as pd

    from mcbench.results.board_markdown import board_tables, to_markdown
    from mcbench.results.leaderboard import aggregate, load_rows

    rows = [{"run_id": f"r{s}", "status": "ok", "method": "m<x>", "dataset": "d", "aspect": "color", "seed": s,
             "encoder": "e", "words_source": "declared", "nmi": 0.5 + 0.1 * s, "ri": 0.7, "hparams": {"lr": 0.1},
             "dataset_params": {"n": 10}} for s in (0, 1)]
    tables = report.sweep_board(rows, ("nmi", "ri"))
    assert [t.rows for t in tables] == [[["color", "NMI", "0.5500 ± 0.0707", "1 × 2"],
                                         ["color", "RI", "0.7000 ± 0.0000", "1 × 2"]]]
    assert tables[0].bold == [[False, False, True, False]] * 2
    page = report.html.render_template("leaderboard.html.j2", board=tables, board_metrics=("nmi", "ri"),
                                       ceiling="ceiling (probe)")
    assert "<th>m&lt;x&gt;</th>" in page and '<tr><td class="l">color</td><td>NMI</td><td><b>0.5500 ± 0.0707</b>' in page
    assert not list(tmp_path.iterdir())
    frame = pd.DataFrame([{k: (__import__("json").dumps(v) if isinstance(v, dict) else v) for k, v in r.items()}
                          for r in rows])
    board = aggregate(load_rows(frame, include_sanity=True))
    assert "| color | NMI | **0.5500 ± 0.0707** | 1 × 2 |" in to_markdown(board)  # the same cells in Markdown
    assert board_tables(board)[0].head == ["aspect", "metric", "m<x>", "runs (image sets × seeds)"]


def test_dataset_spec_takes_the_loader_and_the_data_location_from_the_run_config(tmp_path):
    """A row's identity leaves out ``dataset.root`` and names the data (folder-x), not the loader (folder)."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "dataset:\n  name: folder\n  root: ${paths.data_root}/x\n  verify: strict\n"
        "paths:\n  cache_dir: /some/cache\n  data_root: /data\n")
    row = {"dataset": "folder-x", "dataset_params": '{"verify": "warn"}'}
    assert report.dataset_spec(row, tmp_path) == ("folder", {"verify": "warn", "root": "/data/x"}, "/some/cache")
    assert report.dataset_spec(row, tmp_path / "no-config") == ("folder-x", {"verify": "warn"}, None)


def test_found_clusters_take_the_colour_of_their_matched_class():
    truth = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    found = np.array([2, 2, 2, 0, 0, 1, 3, 3, 3, 3])  # cluster 2 ~ class 0, 0 ~ 1, 3 ~ 2, 1 left over
    point, of_cluster, n = report.matched_colors(found, truth, k=3)
    assert list(of_cluster) == [1, 3, 0, 2] and n == 4
    assert list(point) == [0, 0, 0, 1, 1, 3, 2, 2, 2, 2]
    # same colour for a cluster and its class: one palette of n colours in both panels
    assert (figures._colors(point, n)[:3] == figures._colors(truth, n)[:3]).all()


def test_a_fabricated_run_map_matches_colours_and_names_the_page(tmp_path):
    run = fabricate_run(tmp_path, n=120, collide=False)
    page = report.render_run(run).read_text(encoding="utf-8")
    assert "<title>mcbench report · fake_method · report_fake/color · 00-00-00</title>" in page
    task = report.TaskArtifacts.load(next((run / "tasks").iterdir()))
    ds = __import__("report_fakes").report_fake(n=120, seed=0, image_size=32)
    point, of_cluster, n = report.matched_colors(task.partition, ds.labels["color"], 5)
    assert list(of_cluster) == [0, 1, 2, 3, 4]  # the fake's clusters are its classes (10% noise)


def test_loss_lines_break_where_a_term_is_absent():
    history = ([{"round": 0.0, "phase": 1.0, "align": 1.0 - 0.1 * e} for e in range(3)]
               + [{"round": 0.0, "phase": 2.0, "cluster": 2.0, "intra": 0.5} for _ in range(2)]
               + [{"round": 1.0, "phase": 1.0, "align": 0.5}])
    series = report.loss_series(history)
    assert set(series) == {"align", "cluster", "intra"}  # round and phase are not curves
    assert np.isnan(series["align"][3:5]).all() and np.isfinite(series["align"][[0, 1, 2, 5]]).all()
    assert np.isnan(series["cluster"][[0, 1, 2, 5]]).all()
    assert report.loss_png(history, "t").startswith(b"\x89PNG")


def test_cluster_names_are_cut_between_names_never_inside_one():
    names = "queen_of_hearts(12,+0.01); ace(3,+0.02); king(4,+0.10)"
    assert report.shorten(names, 30, "; ") == "queen_of_hearts(12,+0.01)…"
    assert report.shorten(names, 200, "; ") == names
    assert report.shorten("c1 light_goldenrod_yellow", 12) == "c1…"
    assert report.shorten("light_goldenrod_yellow", 12) == "light_goldenrod_yellow…"


def test_report_command_as_a_real_process(tmp_path):
    """`mcbench-report` end to end in its own process: a fabricated run's page."""
    run = fabricate_run(tmp_path, n=60)
    proc = subprocess.run([sys.executable, "-m", "mcbench.commands.report", str(run)], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, MCBENCH_CACHE=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr
    assert (run / "report" / "index.html").is_file() and "report for" in proc.stdout


def test_the_html_legend_says_what_the_markdown_legend_says():
    """The board's legend is written twice (Markdown in board_markdown.INTRO, HTML in leaderboard.html.j2): the
    same words, so that a change to one without the other fails here."""
    import html as html_module

    from mcbench.results.board_markdown import CEILING, INTRO

    def words(text: str) -> list[str]:
        text = re.sub(r"<[^>]+>", " ", html_module.unescape(text))
        return re.sub(r"[*`]", " ", text).split()

    from mcbench.results.board_markdown import BoardTable

    table = BoardTable("d", "s", "e", "w", head=["aspect"], rows=[["color"]], bold=[[False]])
    page = report.html.render_template("leaderboard.html.j2", board=[table], board_metrics=("nmi",), ceiling=CEILING)
    legend = page.split("</h3>", 1)[1].split("<h4>", 1)[0]
    assert words(legend) == words(INTRO.format(ceiling=CEILING))
