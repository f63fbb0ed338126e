"""The ``mcbench`` command: a thin Hydra entry point around ``mcbench.runner.run``.

Start-up stays light: ``mcbench --help``, ``--cfg job``, ``--info`` and tab completion only compose the config;
torch, open_clip and the methods are imported when a job runs (benchmarks/cli_startup.py measures it).
``main(argv)`` also runs in-process (the tests call it so).
"""

from __future__ import annotations

import importlib.resources
import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

import mcbench.paths  # noqa: F401  (registers the ${mcbench_datasets_dir:} resolver)
from mcbench.results.sweep_files import record_failure, record_rows
from mcbench.registry import UnknownNameError
from mcbench.results.sweep_table import format_rows

PLUGIN_GROUP = "mcbench.methods"  # the entry-point group of methods from other packages (README: Plugins)
# groups a user picks, in the order the help page lists them (method_dataset is picked for them)
USER_GROUPS = ("method", "dataset", "encoder", "llm", "logger", "experiment", "hydra/launcher")


def _user_errors() -> tuple[type[BaseException], ...]:
    from mcbench.encoders import EncoderUnavailableError  # torch is loaded by now: a job ran

    return (UnknownNameError, EncoderUnavailableError, ValueError, FileNotFoundError, RuntimeError,
            FloatingPointError)


@hydra.main(version_base="1.3", config_path="pkg://mcbench.conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    from mcbench.runner import run

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    with open_dict(cfg):
        cfg.artifacts_dir = hc.runtime.output_dir
        if multirun and not cfg.get("sweep_id"):
            cfg.sweep_id = hc.sweep.dir
    logging.getLogger("mcbench").setLevel(logging.INFO)
    try:
        rows = run(cfg)
    except Exception as exc:
        if multirun:  # one failed job must not stop the sweep: log it, list it at the end
            print(f"mcbench: error: {exc}", file=sys.stderr)
            record_failure(hc.sweep.dir, list(hc.overrides.task), exc)
            return
        if isinstance(exc, _user_errors()):
            print(f"mcbench: error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
    if multirun:  # the sweep's final table (callbacks.SweepSummary) reads them back
        record_rows(hc.sweep.dir, list(hc.overrides.task), rows)
    if rows:
        print(format_rows(rows))


# ------------------------------------------------------------------------------------ checks before Hydra


def shipped_choices(group: str) -> list[str]:
    """The YAML names of one config group shipped in ``mcbench.conf`` (no import of torch or the methods)."""
    folder = importlib.resources.files("mcbench.conf")
    for part in group.split("/"):
        folder = folder / part
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def plugin_method_names() -> list[str]:
    """Names of the ``mcbench.methods`` entry points installed (package metadata only, nothing imported)."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=PLUGIN_GROUP)})


def _choices(argv: list[str], key: str) -> list[str]:
    """The literal values of ``key=a,b`` in ``argv`` (sweeps split; globs and ranges left to Hydra)."""
    for arg in argv:
        if arg.startswith(f"{key}="):
            value = arg.split("=", 1)[1]
            if any(ch in value for ch in "()[]{}*$"):
                return []
            return [c.strip() for c in value.split(",") if c.strip()]
    return []


def register_plugin_configs(argv: list[str]) -> str | None:
    """Give every picked method that has no YAML in ``conf/method/`` a config node: its ``Config`` dataclass as
    the same structured config the shipped methods' YAML extends (``mcbench.validation.schema_node``; the shipped
    schemas are stored when Hydra imports ``mcbench.conf``), so a method installed through the ``mcbench.methods``
    entry point runs without ``hydra.searchpath``. Returns one error line for a method found nowhere, else None."""
    picked = [m for m in _choices(argv, "method") if m not in shipped_choices("method")]
    if not picked:
        return None
    from hydra.core.config_store import ConfigStore

    from mcbench.contracts import METHODS  # imports the plugins: only when one is picked
    from mcbench.validation import schema_node

    store = ConfigStore.instance()
    for name in picked:
        try:
            cls = METHODS.get(name)
        except UnknownNameError as exc:
            return str(exc)
        store.store(group="method", name=name, node=schema_node(name, cls.Config), provider=PLUGIN_GROUP)
    return None


def _compose_defaults(argv: list[str]) -> DictConfig:
    """The config the picked groups give (first choice of each), composed without running anything."""
    from hydra import compose, initialize_config_module

    overrides = []
    for group in ("method", "dataset"):
        picked = _choices(argv, group)
        if picked:
            overrides.append(f"{group}={picked[0]}")
    with initialize_config_module("mcbench.conf", version_base="1.3"):
        return compose("config", overrides=overrides)


def check_bare_keys(argv: list[str], cfg: DictConfig) -> str | None:
    """``alpha=0.3`` where ``alpha`` is no top-level key: one line naming where it lives (``method.alpha``)."""
    import difflib

    for arg in argv:
        if "=" not in arg or arg.startswith(("+", "~", "hydra")):
            continue
        key = arg.split("=", 1)[0]
        if "." in key or "/" in key or key in cfg or key in USER_GROUPS:
            continue
        homes = [f"{node}.{key}" for node in cfg if isinstance(cfg.get(node), DictConfig) and key in cfg[node]]
        if homes:
            where = " or ".join(f"{h}={arg.split('=', 1)[1]}" for h in homes)
            return f"'{key}' is not a top-level setting; it is a setting of {homes[0].split('.')[0]}: write {where}"
        close = difflib.get_close_matches(key, [str(k) for k in cfg] + list(USER_GROUPS), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (f"'{key}' is not a setting.{hint} Top-level settings: {', '.join(sorted(str(k) for k in cfg))}; "
                f"a method or dataset setting is written method.<key> or dataset.<key> (mcbench --help)")
    return None


def main(argv: list[str] | None = None) -> None:
    """``mcbench [hydra flags] [overrides]``; ``argv`` defaults to ``sys.argv[1:]``."""
    from mcbench.commands.overrides import check_grammar, check_overrides

    from hydra._internal.utils import get_args_parser

    if argv is not None:
        sys.argv = [sys.argv[0] if sys.argv else "mcbench", *argv]
    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    if args.shell_completion:  # tab completion: nothing to check, nothing to import
        _app()
        return
    overrides = list(args.overrides)
    problem = check_grammar(overrides)
    if not problem:
        problem = register_plugin_configs(overrides)
    if not problem and not any(a.startswith("experiment=") for a in overrides):
        needs_keys = any(a.startswith(("method.", "dataset.")) for a in overrides)
        bare = any("=" in a and "." not in a.split("=", 1)[0] and not a.startswith(("+", "~", "hydra"))
                   and a.split("=", 1)[0] not in USER_GROUPS for a in overrides)
        if needs_keys or bare:
            defaults = _compose_defaults(overrides)
            problem = check_bare_keys(overrides, defaults) if bare else None
            if not problem and needs_keys:
                problem = check_overrides(overrides, defaults.method.name, defaults.dataset.name)
    if problem:
        print(f"mcbench: error: {problem}", file=sys.stderr)
        sys.exit(2)
    _app()


def _help_groups() -> str:
    """The ``mcbench --help`` list of the groups a user picks, with their choices (read from conf/)."""
    lines = []
    for group in USER_GROUPS:
        choices = shipped_choices(group)
        if group == "method":
            plugins = [p for p in plugin_method_names() if p not in choices]
            choices = choices + [f"{p} (plugin)" for p in plugins]
        if group == "hydra/launcher":
            choices = choices + ["basic (default: one job after another)"]
        if group == "experiment":
            repro = [c for c in choices if c.startswith("reproduce_")]
            choices = [c for c in choices if not c.startswith("reproduce_")]
            if repro:
                choices.append(f"reproduce_<method>_<dataset>_<aspect> ({len(repro)} pinned paper rows)")
        lines.append(f"  {group}: {', '.join(choices)}")
    return "\n".join(lines)


if not OmegaConf.has_resolver("mcbench_help_groups"):
    OmegaConf.register_new_resolver("mcbench_help_groups", _help_groups)


if __name__ == "__main__":
    main()
