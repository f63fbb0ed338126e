"""Gains over a baseline and the share of headroom captured, replicated over image sets.

A method's gain over a baseline (``zeroshot_gpt``, its starting point; ``crl_projection``) is paired by
**(image set, method seed)**: same images, same method seed, same words and encoder. The method seeds of one
image set are averaged first, so the unit of replication is the *image set* (a dataset at one difficulty level
drawn with one generator seed, ``identity.image_set``): the 95 % interval is a t-interval of the mean gain over
image sets, i.e. how much the gain would move on another sample of images drawn the same way. A verdict (gain,
loss, no gain) is only given over at least ``MIN_IMAGE_SETS`` image sets.

The headroom share (issue 17) puts a gain over ``zeroshot_gpt`` on the scale of what the images allow:
(method − zeroshot_gpt) / (ceiling − zeroshot_gpt), where the ceiling is the probe trained with the labels
(``ceiling_nmi``/``ceiling_acc`` in the rows). It is the mean gain over image sets divided by the mean
headroom over the same image sets; its interval is the gain's interval divided by that headroom.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BASELINES = ("zeroshot_gpt", "crl_projection")
HEADROOM_BASELINE = "zeroshot_gpt"
GAIN_EPS = 1e-4  # differences below this are float noise (rows keep 6 decimals): never a gain or a loss
MIN_IMAGE_SETS = 5  # fewer image sets: the interval is shown, no verdict is given
MIN_HEADROOM = 0.01  # a ceiling this close to the baseline leaves nothing to capture: no share
TASK_KEYS = ["dataset", "setting", "aspect", "encoder", "words_source"]
METHOD_KEYS = ["method", "variant", "selection", "tuned"]
PAIR = ["image_set", "seed"]
COLUMNS = TASK_KEYS + METHOD_KEYS + ["baseline", "metric", "n_image_sets", "n_pairs", "gain", "gain_std",
                                    "ci95_low", "ci95_high", "verdict", "ceiling", "headroom", "headroom_share",
                                    "share_low", "share_high"]


def t_interval(values: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, std and the 95 % t-interval of ``values`` (NaN where fewer than two)."""
    from scipy import stats

    n = len(values)
    mean = float(values.mean()) if n else np.nan
    if n < 2:
        return mean, np.nan, np.nan, np.nan
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * std / np.sqrt(n))
    return mean, std, mean - half, mean + half


def _verdict(diffs: np.ndarray, n_sets: int, low: float, high: float) -> str:
    if np.abs(diffs).max() < GAIN_EPS:
        return "no change (same as the baseline)"
    if n_sets < MIN_IMAGE_SETS:
        return f"no verdict ({n_sets} image set{'s' if n_sets != 1 else ''} < {MIN_IMAGE_SETS})"
    if low > GAIN_EPS:
        return "gain"
    if high < -GAIN_EPS:
        return "loss"
    return "no gain (within image-set spread)"


def gains(df: pd.DataFrame, metrics: tuple[str, ...] | str = ("nmi",)) -> pd.DataFrame:
    """One line per (task, method, baseline, metric): the paired gain over image sets, its interval and
    verdict; against ``zeroshot_gpt``, also the ceiling, the headroom and the share of it captured."""
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    out: list[dict] = []
    if df.empty:
        return pd.DataFrame(out, columns=COLUMNS)
    for key, part in df.groupby(TASK_KEYS, dropna=False):
        for metric in metrics:
            if metric not in part:
                continue
            ceiling = _ceiling_per_set(part, metric)
            for base in BASELINES:
                ref = part[part["method"] == base].groupby(PAIR)[metric].mean()
                if ref.empty:
                    continue
                # every method but the baseline itself and the starting point (crl_projection, a control, also
                # gets its gain and headroom share over zeroshot_gpt)
                others = part[~part["method"].isin({base, HEADROOM_BASELINE})]
                for mkey, rows in others.groupby(METHOD_KEYS, dropna=False):
                    diff = (rows.groupby(PAIR)[metric].mean() - ref).dropna()
                    if diff.empty:
                        continue
                    per_set = diff.groupby(level="image_set").mean()
                    n_sets = len(per_set)
                    mean, std, low, high = t_interval(per_set.to_numpy())
                    line = dict(zip(TASK_KEYS, key)) | dict(zip(METHOD_KEYS, mkey)) | {
                        "baseline": base, "metric": metric, "n_image_sets": n_sets, "n_pairs": len(diff),
                        "gain": round(mean, 4), "gain_std": round(std, 4), "ci95_low": round(low, 4),
                        "ci95_high": round(high, 4), "verdict": _verdict(diff.to_numpy(), n_sets, low, high)}
                    if base == HEADROOM_BASELINE and ceiling is not None:
                        line |= _share(per_set, ref, ceiling)
                    out.append(line)
    return pd.DataFrame(out, columns=COLUMNS)


def _ceiling_per_set(part: pd.DataFrame, metric: str) -> pd.Series | None:
    """The probe's score per image set (the same for every row of an image set), or None without one."""
    column = f"ceiling_{metric}"
    if column not in part:
        return None
    values = pd.to_numeric(part[column], errors="coerce")
    per_set = values.groupby(part["image_set"]).mean().dropna()
    return per_set if not per_set.empty else None


def _share(per_set_gain: pd.Series, ref: pd.Series, ceiling: pd.Series) -> dict[str, float]:
    """(method − baseline) / (ceiling − baseline) over the image sets that have a ceiling: the mean gain over
    those image sets divided by their mean headroom, and the gain's 95 % interval divided the same way."""
    sets = [s for s in per_set_gain.index if s in ceiling.index]
    if not sets:
        return {}
    base_per_set = ref.groupby(level="image_set").mean()
    headroom = float(np.mean([ceiling[s] - base_per_set[s] for s in sets]))
    mean, _, low, high = t_interval(per_set_gain.loc[sets].to_numpy())
    line = {"ceiling": round(float(ceiling.loc[sets].mean()), 4), "headroom": round(headroom, 4),
            "headroom_share": np.nan, "share_low": np.nan, "share_high": np.nan}
    if headroom >= MIN_HEADROOM:
        line |= {"headroom_share": round(mean / headroom, 4), "share_low": round(low / headroom, 4),
                 "share_high": round(high / headroom, 4)}
    return line
