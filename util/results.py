"""Metric results as typed records: what evaluation measures (test.py and validation) and what the console, loss_log,
visdom, the pages, validation's best.pth and ``--val_metric`` read.

- ``Metric``: a kind of measurement, defined once here (name, which direction is better, unit, display precision,
  whether it exists per item or only for a whole set, as FID and KID do). ``METRICS`` is the registry.
- ``Result``: one measured value: the metric, what was measured (an output label such as ``fake_B``, or for a
  cycle error the domain ``A`` of A -> B -> A), the copy-the-input baseline where there is one, the spread of a
  set-level estimate (KID's standard deviation), the region of a masked metric and the data range used.
- ``Results``: the ordered, immutable collection of one item's or one set's results.

On disk (metrics.json/csv, summary.json, loss_history.jsonl, checkpoints' best metric) results keep the flat names
of earlier versions: ``PSNR_fake_B``, ``baseline_PSNR_fake_B``, ``cycle_MAE_A``; later kinds extend the same scheme
(``[baseline_][cycle_]METRIC[_REGION]_OUTPUT[_std]``). ``Result.key``, ``Results.flat`` and ``Results.from_flat``
are the only code that writes or reads these names; ``Results.to_json``/``from_json`` add the fields a flat name
cannot hold (the data range) for files that keep them.
"""
import functools
import math
import re
from dataclasses import asdict, dataclass, replace
from typing import Optional

import numpy as np

from util.errors import UserError


@dataclass(frozen=True)
class Metric:
    """A kind of measurement.

    Attributes:
        name: its name in keys, tables and ``--val_metric`` ("PSNR").
        higher_is_better: which direction is better (validation's best.pth, worst-first sorting, green deltas).
        unit: the unit of its values where it has its own ("dB"); "" for ratios and values in the data's units.
        decimals: digits after the point when printed.
        data_units: its values are in the data's own units (an error in HU for CT volumes), so large values are
            printed with fewer decimals.
        per_item: False for metrics of a whole set only (FID, KID): no per-item values and no copy baseline.
        about: what it is, in a few words.
    """
    name: str
    higher_is_better: bool
    unit: str = ""
    decimals: int = 4
    data_units: bool = False
    per_item: bool = True
    about: str = ""

    def better(self, value, than) -> bool:
        """Whether ``value`` is strictly better than ``than``."""
        return value > than if self.higher_is_better else value < than

    @property
    def worst_first(self) -> str:
        """The sort direction ("asc" or "desc") that puts the worst value first."""
        return "asc" if self.higher_is_better else "desc"


PSNR = Metric("PSNR", True, unit="dB", decimals=2, about="peak signal-to-noise ratio")
SSIM = Metric("SSIM", True, about="structural similarity")
MAE = Metric("MAE", False, data_units=True, about="mean absolute error")
FID = Metric("FID", False, decimals=2, per_item=False,
             about="Fréchet Inception distance of the output set to the real target set (standard InceptionV3)")
KID = Metric("KID", False, decimals=4, per_item=False,
             about="kernel Inception distance (mean ± standard deviation over subsets)")
METRICS = {m.name: m for m in (MAE, PSNR, SSIM, FID, KID)}  # every kind a result may have
SHOWN = (PSNR, SSIM, MAE)  # the order of the pages' metric columns
CYCLE_METRICS = (MAE,)  # what evaluation measures of a cycle A -> B -> A (against A)
PER_ITEM = (MAE, PSNR, SSIM)  # what evaluation measures of each output against its target (evaluation.metrics)
REGIONS = ("foreground",)  # named regions of masked metrics (volumes: evaluation.metrics); no region: every voxel
# the kinds of baseline (evaluation.baselines)
BASELINES = {"copy": "copy of the input", "lut": "look-up table", "mean": "mean target"}
DOMAINS = ("A", "B")
# a trained model's translations: output label -> (source, target) domains (--val_metric's outputs; pages of results
# that do not describe their translations)
TRANSLATIONS = {"fake_B": ("A", "B"), "fake_A": ("B", "A")}
OUTPUTS = tuple(TRANSLATIONS)


@dataclass(frozen=True)
class Result:
    """One measured value.

    Attributes:
        metric: the kind (a ``Metric``).
        output: what was measured: an output label ("fake_B", "fake") or, for a cycle error, its domain ("A").
        value: the value (a mean over items for a set's results).
        baseline: the same metric of the copy-the-input baseline (the input unchanged), None where there is none.
        std: the standard deviation of a set-level estimate (KID), None otherwise.
        cycle: the cycle error: ``output``'s domain translated to the other and back, against the input.
        region: None for every pixel or voxel; a name of ``REGIONS`` for a masked metric.
        data_range: the data range the metric used (1.0 for images on 0..1, a volume's target window), None where
            unknown (files of earlier versions).
        baseline_kind: what the baseline is: "copy" (the input unchanged; what files of earlier versions hold, where
            this is None), "lut" (a look-up table fitted on the training pairs) or "mean" (their mean target
            everywhere; evaluation.baselines).
    """
    metric: Metric
    output: str
    value: float
    baseline: Optional[float] = None
    std: Optional[float] = None
    cycle: bool = False
    region: Optional[str] = None
    data_range: Optional[float] = None
    baseline_kind: Optional[str] = None

    @property
    def identity(self):
        """What the result is of (metric, output, cycle, region): equal for the same column of different items."""
        return self.metric.name, self.output, self.cycle, self.region

    @property
    def group(self):
        """What was measured, regardless of the metric."""
        return self.output, self.cycle, self.region

    @property
    def key(self) -> str:
        """Its name on disk and for --val_metric: PSNR_fake_B, cycle_MAE_A (PSNR_foreground_fake_B)."""
        return "_".join((["cycle"] if self.cycle else []) + [self.metric.name] + ([self.region] if self.region else [])
                        + [self.output])

    @property
    def baseline_key(self) -> str:
        return "baseline_" + self.key

    @property
    def std_key(self) -> str:
        return self.key + "_std"

    @property
    def delta(self) -> Optional[float]:
        """The value minus the baseline (None without a baseline)."""
        return None if self.baseline is None else self.value - self.baseline

    @property
    def baseline_name(self) -> Optional[str]:
        """The baseline, for people: "copy of the input", "look-up table", "mean target"; None without one."""
        if self.baseline is None:
            return None
        return BASELINES.get(self.baseline_kind or "copy", self.baseline_kind)

    def path(self, arrow="→") -> str:
        """What was measured, for people: "A → B → A" for a cycle error, else the output label."""
        if not self.cycle:
            return self.output
        other = {"A": "B", "B": "A"}.get(self.output, "?")
        return f" {arrow} ".join((self.output, other, self.output))

    def to_json(self) -> dict:
        """The record as metrics.json and summary.json keep it beside the flat names (the metric's direction and
        unit included, for scripts that read it without this code)."""
        out = {k: v for k, v in asdict(self).items() if v is not None and v is not False and k != "metric"}
        return {"metric": self.metric.name, "key": self.key, **out, "higher_is_better": self.metric.higher_is_better,
                **({"unit": self.metric.unit} if self.metric.unit else {})}


@functools.lru_cache(maxsize=8)
def _key_pattern(names, regions):
    names = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    regions = "|".join(re.escape(r) for r in regions)
    return re.compile(rf"(?P<baseline>baseline_)?(?P<cycle>cycle_)?(?P<metric>{names})(?:_(?P<region>{regions}))?"
                      rf"_(?P<output>.+?)(?P<std>_std)?")


def parse_key(key):
    """The parts of a name on disk: a match with groups baseline, cycle, metric, region, output, std; None for a
    name that is no result (the grammar of ``Result.key``, over the metrics and regions registered now)."""
    return _key_pattern(tuple(METRICS), REGIONS).fullmatch(str(key))


NOT_FINITE = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}


def number(v):
    """A value of metrics.json or summary.json as a float (the strings strict_json writes included); None when it
    is no number."""
    if isinstance(v, str):  # how metrics.json and summary.json keep the values strict JSON has no number for
        return NOT_FINITE.get(v)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def strict_json(value, as_null=False):
    """``value`` with every float that is not finite as the string "Infinity", "-Infinity" or "NaN" (the PSNR of
    an output equal to its target is infinite), so that ``json.dump(..., allow_nan=False)`` writes it as strict
    JSON, which every parser reads; Python's ``float()`` and JavaScript's ``Number()`` read the strings back, and so
    does ``Results.from_flat``/``from_json``. ``as_null``: as null instead (data for the pages' scripts)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if as_null else "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: strict_json(v, as_null) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v, as_null) for v in value]
    return value


class Results(tuple):
    """The results of one item or of one set, in the order they were measured (an immutable tuple of ``Result``)."""

    def __new__(cls, results=()):
        return super().__new__(cls, results)

    def __repr__(self):
        return "Results(" + ", ".join(f"{r.key}={r.value:g}" for r in self) + ")"

    # -- lookup ------------------------------------------------------------------------------------------------------
    def get(self, key: str) -> Optional[Result]:
        """The result named ``key`` (as on disk), or None."""
        return next((r for r in self if r.key == key), None)

    def find(self, metric: Metric, output: str, cycle=False, region=None) -> Optional[Result]:
        return next((r for r in self if r.identity == (metric.name, output, cycle, region)), None)

    def value(self, metric: Metric, output: str, **kw) -> Optional[float]:
        r = self.find(metric, output, **kw)
        return None if r is None else r.value

    @property
    def translations(self) -> "Results":
        """The results of outputs against their targets (not cycle errors), over every pixel or voxel."""
        return Results(r for r in self if not r.cycle and r.region is None)

    def in_region(self, region) -> "Results":
        """The results of outputs against their targets in ``region`` (a name of ``REGIONS``; None: every pixel or
        voxel, as ``translations``)."""
        return Results(r for r in self if not r.cycle and r.region == region)

    @property
    def regions(self) -> list:
        """The named regions of masked results present, in ``REGIONS`` order."""
        return [g for g in REGIONS if any(r.region == g for r in self)]

    @property
    def cycles(self) -> "Results":
        return Results(r for r in self if r.cycle)

    @property
    def outputs(self) -> list:
        """The output labels that translation results name, in order."""
        return list(dict.fromkeys(r.output for r in self.translations))

    @property
    def metrics(self) -> list:
        """The kinds of metric present, in ``SHOWN`` order first, then as measured."""
        names = {r.metric.name for r in self}
        return [m for m in SHOWN if m.name in names] + list(dict.fromkeys(
            r.metric for r in self if r.metric not in SHOWN))

    # -- on disk -----------------------------------------------------------------------------------------------------
    def flat(self) -> dict:
        """{name: value} as metrics.json, summary.json and loss_history.jsonl keep it: per thing measured its values,
        then its baselines, then its spreads (the column order of metrics.csv)."""
        groups = {}
        for r in self:
            groups.setdefault(r.group, []).append(r)
        out = {}
        for rs in groups.values():
            out.update({r.key: r.value for r in rs})
            out.update({r.baseline_key: r.baseline for r in rs if r.baseline is not None})
            out.update({r.std_key: r.std for r in rs if r.std is not None})
        return out

    @classmethod
    def from_flat(cls, flat: dict) -> "Results":
        """The results a flat {name: value} dict holds (metrics.json's mean and items, summary.json's mean, a
        validation point of loss_history.jsonl, of this version or an earlier one). Other entries ("name") and
        values that are not numbers are skipped."""
        found, extra = {}, []
        for key, v in (flat or {}).items():
            m = parse_key(key)
            v = number(v)
            if m is None or v is None:
                continue
            ident = (m["metric"], m["output"], bool(m["cycle"]), m["region"])
            if m["baseline"] or m["std"]:
                extra.append((ident, "baseline" if m["baseline"] else "std", v))
            elif ident not in found:
                found[ident] = Result(METRICS[m["metric"]], m["output"], v, cycle=bool(m["cycle"]), region=m["region"])
        for ident, field, v in extra:  # a baseline or spread without its value is no result
            if ident in found:
                found[ident] = replace(found[ident], **{field: v})
        return cls(found.values())

    def to_json(self) -> list:
        return [r.to_json() for r in self]

    @classmethod
    def from_json(cls, records, flat=None) -> "Results":
        """Records written by ``to_json``; where there are none (files of earlier versions) the ones ``flat`` names.
        """
        out = []
        for rec in records if isinstance(records, list) else ():
            metric = METRICS.get(rec.get("metric")) if isinstance(rec, dict) else None
            value = number(rec.get("value")) if metric else None
            if value is None or not isinstance(rec.get("output"), str):
                continue
            kind = rec.get("baseline_kind")
            out.append(Result(metric, rec["output"], value, number(rec.get("baseline")), number(rec.get("std")),
                              bool(rec.get("cycle")), rec.get("region") if rec.get("region") in REGIONS else None,
                              number(rec.get("data_range")), kind if isinstance(kind, str) else None))
        return cls(out) if out else cls.from_flat(flat or {})

    # -- arithmetic --------------------------------------------------------------------------------------------------
    def with_flat_values(self, flat: dict) -> "Results":
        """These results with their values, baselines and spreads taken from ``flat`` (e.g. averaged over
        processes); looked up by their own names."""
        return Results(replace(r, value=flat[r.key], baseline=flat.get(r.baseline_key, r.baseline),
                               std=flat.get(r.std_key, r.std)) for r in self)


def summarize(rows) -> Results:
    """The mean of every result over per-item results (``rows``: {name: Results} or a list of Results); a baseline
    is the mean over the items that have one. NaN values count as they are (a mean with one is NaN)."""
    rows = list(rows.values()) if isinstance(rows, dict) else list(rows)
    columns = {}
    for results in rows:
        for r in results:
            columns.setdefault(r.identity, []).append(r)
    out = []
    for rs in columns.values():
        base = [r.baseline for r in rs if r.baseline is not None]
        out.append(replace(rs[0], value=_mean([r.value for r in rs]), baseline=_mean(base) if base else None))
    return Results(out)


def _mean(values):
    return float(np.mean(values))


# -- --val_metric ------------------------------------------------------------------------------------------------------
def val_metric_names():
    """The names --val_metric takes besides auto: each metric of each output a training run has, and its cycle
    error."""
    return list(dict.fromkeys([Result(m, o, 0).key for o in OUTPUTS for m in METRICS.values()]
                              + measured_names(OUTPUTS, DOMAINS, REGIONS)))


def measured_names(outputs=(), cycles=(), regions=()):
    """The names of the per-item results evaluation gives for translations ``outputs`` (labels) against targets,
    also in ``regions`` (volumes: "foreground"), and for the cycle errors of domains ``cycles``."""
    return [Result(m, o, 0, region=g).key for o in outputs for g in (None,) + tuple(regions) for m in PER_ITEM] + \
        [Result(m, d, 0, cycle=True).key for d in cycles for m in CYCLE_METRICS]


def check_val_metric(name: str) -> str:
    """``name`` if --val_metric can name it (any case), else a UserError that lists what it takes."""
    if name.lower() == "auto" or name.lower() in {n.lower() for n in val_metric_names()}:
        return name
    translations = ", ".join(Result(m, OUTPUTS[0], 0).key for m in METRICS.values())
    cycles = " / ".join(Result(m, d, 0, cycle=True).key for m in CYCLE_METRICS for d in DOMAINS)
    regions = ", ".join(Result(PSNR, OUTPUTS[0], 0, region=g).key for g in REGIONS)
    raise UserError(f"--val_metric {name}: use auto, {translations} (or _{OUTPUTS[1]}), {regions} (volumes; MAE_ and "
                    f"SSIM_ too), or {cycles} for unpaired data")
