"""The ``mcbench`` command: a thin Hydra entry point around ``mcbench.run.run``."""

from __future__ import annotations

import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

import mcbench.paths  # noqa: F401  (registers the ${mcbench_datasets_dir:} resolver)
from mcbench.callbacks import record_failure
from mcbench.encoders import EncoderUnavailableError
from mcbench.registry import UnknownNameError
from mcbench.report_table import format_rows

USER_ERRORS = (UnknownNameError, EncoderUnavailableError, ValueError, FileNotFoundError, RuntimeError,
               FloatingPointError)


@hydra.main(version_base="1.3", config_path="pkg://mcbench.conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    from mcbench.run import run

    hc = HydraConfig.get()
    with open_dict(cfg):
        cfg.artifacts_dir = hc.runtime.output_dir
        if hc.mode == RunMode.MULTIRUN and not cfg.get("sweep_id"):
            cfg.sweep_id = hc.sweep.dir
    logging.getLogger("mcbench").setLevel(logging.INFO)
    try:
        rows = run(cfg)
    except Exception as exc:
        if hc.mode == RunMode.MULTIRUN:  # one failed job must not stop the sweep: log it, list it at the end
            print(f"mcbench: error: {exc}", file=sys.stderr)
            record_failure(hc.sweep.dir, list(hc.overrides.task), exc)
            return
        if isinstance(exc, USER_ERRORS):
            print(f"mcbench: error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
    if rows:
        print(format_rows(rows))


def main() -> None:
    from hydra import compose, initialize_config_module

    from mcbench.overrides import check_grammar, check_overrides

    argv = [a for a in sys.argv[1:] if not a.startswith("-")]
    problem = check_grammar(argv)
    if problem:
        print(f"mcbench: error: {problem}", file=sys.stderr)
        sys.exit(2)
    if any(a.startswith(("method.", "dataset.")) for a in argv):
        with initialize_config_module("mcbench.conf", version_base="1.3"):
            defaults = compose("config")
        problem = check_overrides(argv, defaults.method.name, defaults.dataset.name)
        if problem:
            print(f"mcbench: error: {problem}", file=sys.stderr)
            sys.exit(2)
    _app()


if __name__ == "__main__":
    main()
