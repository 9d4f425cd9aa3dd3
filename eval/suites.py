"""The STS suites: which data each one uses, how it is assembled, and what it averages.

A suite becomes a `Plan`: a list of tasks (named sets of scored pairs), the summaries to compute
over their results, and what was skipped because its data is absent (never faked). Data comes
from a folder (`LocalSource`, the layout below) or the Hugging Face hub (`HubSource`).

Folder layout (any of .jsonl/.csv/.tsv, optionally .gz, with columns sentence1, sentence2, score):
    DIR/sts12/*.jsonl ... DIR/sts16/*.jsonl   one file per subset, concatenated ("all" setting)
    DIR/sickr/test.jsonl
    DIR/stsb/{lang}/{dev,test}.jsonl           rows aligned across languages
    DIR/sts17/{pair}.jsonl                     pair names as MTEB's: en-en, en-de, ...
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from pixelrep.eval.data import EXTENSIONS, StsData, concat, cross_pairs, is_sts_file, load_sts_file, dataset_to_sts
from pixelrep.eval.sts import CachedEncoder, PerturbedPixelEncoder, predict_similarity, score_predictions
from pixelrep.render.visual import IMAGE_PERTURBATIONS, LAYOUT_PERTURBATIONS, TEXT_PERTURBATIONS

SUITES = ("english", "stsb-multi", "crosslingual", "sts17", "robustness", "visual")
SUITE_CHOICES = SUITES + ("all",)

ENGLISH_YEARS = ("sts12", "sts13", "sts14", "sts15", "sts16")
# STS-B languages: stsb_multi_mt's ten plus Japanese (in the offline copy, not on the hub).
STSB_LANGS = ("en", "de", "es", "fr", "it", "nl", "pl", "pt", "ru", "zh", "ja")
# The cross-lingual STS-B average the default model is held to (issue 7): en-X for these X.
XLING_HEADLINE = ("de", "es", "fr", "it", "nl")
STS17_PAIRS = ("en-en", "ar-ar", "es-es", "en-ar", "en-de", "en-tr", "es-en", "fr-en", "it-en", "nl-en")
TYPO_RATES = (0.05, 0.1, 0.2)
# The visual suite: every character kind of pixelrep.render.visual at each rate, every image kind at
# three levels, mildest first: blur sigma (px), JPEG quality, low-res scale, degrees each patch turns,
# pixels the ink moves.
VISUAL_KINDS = tuple(TEXT_PERTURBATIONS) + tuple(IMAGE_PERTURBATIONS) + tuple(LAYOUT_PERTURBATIONS)
VISUAL_RATES = (0.1, 0.3, 0.5)
VISUAL_IMAGE_LEVELS = {"blur": (0.5, 1.0, 1.5), "jpeg": (50, 20, 10), "low-res": (0.75, 0.5, 0.35), "rotate": (3, 6, 10),
                       "shift": (0.5, 1.0, 2.0), "continuous": (0.0, 0.5, 1.0)}
IMAGE_NOT_APPLICABLE = "image perturbation: a text model never sees the rendering"

HUB_IDS = {
    "year": "mteb/{name}-sts",
    "sickr": "mteb/sickr-sts",
    "stsb-benchmark": "mteb/stsbenchmark-sts",
    "stsb": "PhilipMay/stsb_multi_mt",
    "sts17": "mteb/sts17-crosslingual-sts",
}


class DataMissing(Exception):
    """The data for a task is absent (no file, or the hub cannot be reached): skip, with this reason."""


class DataSource:
    """Loads each STS set once; subclasses say where the sets live."""

    description = ""

    def __init__(self):
        self._loaded: dict[tuple, StsData | DataMissing] = {}

    def get(self, what: str, *args) -> StsData:
        """what: "year" (name), "sickr", "stsb_benchmark" (split), "stsb" (lang, split) or "sts17" (pair)."""
        key = (what, *args)
        if key not in self._loaded:
            try:
                self._loaded[key] = getattr(self, what)(*args)
            except DataMissing as e:
                self._loaded[key] = e
        if isinstance(self._loaded[key], DataMissing):
            raise self._loaded[key]
        return self._loaded[key]


class LocalSource(DataSource):
    """STS files in the folder layout of this module's docstring."""

    def __init__(self, root: str | Path):
        super().__init__()
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"--data-dir {self.root} is not a folder (expected e.g. DIR/stsb/en/test.jsonl)")
        self.description = f"local:{self.root.resolve()}"

    def _file(self, folder: str, stem: str) -> Path:
        where = self.root / folder
        if not where.is_dir():
            raise DataMissing(f"no folder {where}")
        for ext in EXTENSIONS:
            for candidate in (where / f"{stem}{ext}", where / f"{stem}{ext}.gz"):
                if candidate.is_file():
                    return candidate
        raise DataMissing(f"no {where / stem}{{{','.join(EXTENSIONS)}}}")

    def year(self, name: str) -> StsData:
        where = self.root / name
        files = sorted(p for p in where.iterdir() if is_sts_file(p)) if where.is_dir() else []
        if not files:
            raise DataMissing(f"no subset files in {where} (expected {where}/*.jsonl)")
        return concat([load_sts_file(p) for p in files], source=str(where))

    def sickr(self) -> StsData:
        return load_sts_file(self._file("sickr", "test"))

    def stsb_benchmark(self, split: str = "test") -> StsData:
        return self.stsb("en", split)

    def stsb(self, lang: str, split: str = "test") -> StsData:
        return load_sts_file(self._file(f"stsb/{lang}", split))

    def sts17(self, pair: str) -> StsData:
        return load_sts_file(self._file("sts17", pair))


def hub_fix() -> str:
    """What to do when the hub gave no data: said once per message, not per data set."""
    from pixelrep.hub import hub_offline

    if hub_offline():
        return "pass --data-dir ../shared/data/sts (the offline copy); with HF_HUB_OFFLINE=1 only the datasets cache is read"
    return "pass --data-dir ../shared/data/sts (the offline copy), or set HF_HUB_OFFLINE=1 to use the datasets cache"


class HubSource(DataSource):
    """The same sets from the Hugging Face hub (needs network, or the datasets cache with HF_HUB_OFFLINE=1)."""

    description = "hub"

    def _load(self, path: str, name: str | None = None, split: str = "test", score_column: str = "score") -> StsData:
        import datasets

        from pixelrep.hub import require_hub

        source = path + (f"[{name}]" if name else "") + f":{split}"
        require_hub(f"STS data {source}", hub_fix())  # seconds, not minutes of retries, when offline
        try:
            ds = datasets.load_dataset(path, name, split=split)
        except Exception as e:  # not cached offline, unknown config, no such split: the data is not available
            raise DataMissing(f"{source} could not be loaded ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
        return dataset_to_sts(ds, source, score_column=score_column)

    def year(self, name: str) -> StsData:
        return self._load(HUB_IDS["year"].format(name=name))

    def sickr(self) -> StsData:
        return self._load(HUB_IDS["sickr"])

    def stsb_benchmark(self, split: str = "test") -> StsData:
        return self._load(HUB_IDS["stsb-benchmark"], split="validation" if split == "dev" else split)

    def stsb(self, lang: str, split: str = "test") -> StsData:
        # All languages from one dataset, so its rows are aligned for cross-lingual pairs.
        return self._load(HUB_IDS["stsb"], lang, split=split, score_column="similarity_score")

    def sts17(self, pair: str) -> StsData:
        return self._load(HUB_IDS["sts17"], pair)


@dataclass
class Task:
    suite: str
    name: str
    data: StsData
    perturbation: str | None = None   # the visual suite's kind ("homoglyphs", "blur", ...); None when clean
    level: float | None = None        # its rate (character kinds) or level (image kinds)
    on_pixels: bool = False           # an image kind: applied to the rendering, so pixel models only
    seed: int = 0                     # seed of an image kind's random draws


@dataclass
class Summary:
    """A row computed from task results: the mean of `tasks`, or for kind="drop" tasks[0] - tasks[1]."""

    suite: str
    name: str
    tasks: tuple[str, ...]
    kind: str = "mean"


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)   # {suite, task, reason}
    source: str = ""


def expand_suites(suite: str | list[str]) -> list[str]:
    names = [suite] if isinstance(suite, str) else list(suite)
    out = []
    for name in names:
        if name not in SUITE_CHOICES:
            raise ValueError(f"unknown suite {name!r}; choose from {', '.join(SUITE_CHOICES)}")
        out += list(SUITES) if name == "all" else [name]
    return list(dict.fromkeys(out))


def build_plan(suite: str | list[str], source: DataSource, limit: int | None = None,
               typo_rates: tuple[float, ...] = TYPO_RATES, seed: int = 0,
               visual_kinds: tuple[str, ...] = VISUAL_KINDS, visual_rates: tuple[float, ...] = VISUAL_RATES) -> Plan:
    """Assemble the test-split tasks of the given suites from `source`; absent data is listed in plan.missing.

    visual_kinds / visual_rates: which kinds of the visual suite run, and the rates of its character
    kinds (image kinds run at VISUAL_IMAGE_LEVELS).
    """
    if limit is not None and limit < 2:
        raise ValueError(f"limit={limit}: need at least 2 pairs per task")
    unknown = [k for k in visual_kinds if k not in VISUAL_KINDS]
    if unknown:
        raise ValueError(f"unknown visual perturbation kind(s) {unknown}; known: {', '.join(VISUAL_KINDS)}")
    bad_rates = [r for r in visual_rates if not 0 < r <= 1]
    if bad_rates:
        raise ValueError(f"visual rates {bad_rates}: use fractions of eligible characters in (0, 1], e.g. 0.1 0.3 0.5")
    plan = Plan(source=source.description)

    def add(suite_name: str, task: str, load):
        try:
            data = load()
        except DataMissing as e:
            plan.missing.append(dict(suite=suite_name, task=task, reason=str(e)))
            return
        plan.tasks.append(Task(suite_name, task, data.spread(limit) if limit else data))

    def summarize(suite_name: str, name: str, tasks, kind: str = "mean"):
        plan.summaries.append(Summary(suite_name, name, tuple(tasks), kind))

    for s in expand_suites(suite):
        if s == "english":
            for year in ENGLISH_YEARS:
                add(s, year, lambda y=year: source.get("year", y))
            add(s, "stsb", lambda: source.get("stsb_benchmark", "test"))
            add(s, "sickr", lambda: source.get("sickr"))
            summarize(s, "avg", ENGLISH_YEARS + ("stsb", "sickr"))
        elif s == "stsb-multi":
            for lang in STSB_LANGS:
                add(s, lang, lambda lang=lang: source.get("stsb", lang, "test"))
            summarize(s, "avg", STSB_LANGS)
        elif s == "crosslingual":
            # en-X: sentence1 in English, sentence2 in X; X-en the reverse. Gold scores are shared.
            directions = []
            for x in STSB_LANGS[1:]:
                add(s, f"en-{x}", lambda x=x: cross_pairs(source.get("stsb", "en", "test"), source.get("stsb", x, "test")))
                add(s, f"{x}-en", lambda x=x: cross_pairs(source.get("stsb", x, "test"), source.get("stsb", "en", "test")))
                directions += [f"en-{x}", f"{x}-en"]
            summarize(s, "stsb avg", directions)
            summarize(s, f"stsb en-{{{','.join(XLING_HEADLINE)}}} avg", [f"en-{x}" for x in XLING_HEADLINE])
            cross17 = [p for p in STS17_PAIRS if _is_cross(p)]
            for pair in cross17:
                add(s, f"sts17 {pair}", lambda p=pair: source.get("sts17", p))
            summarize(s, "sts17 avg", [f"sts17 {p}" for p in cross17])
        elif s == "sts17":
            for pair in STS17_PAIRS:
                add(s, pair, lambda p=pair: source.get("sts17", p))
            summarize(s, "avg", STS17_PAIRS)
            summarize(s, "cross-lingual avg", [p for p in STS17_PAIRS if _is_cross(p)])
        elif s in ("robustness", "visual"):
            # STS-B en test clean, then perturbed; each perturbed task's drop from clean is a summary.
            try:
                clean = source.get("stsb", "en", "test")
            except DataMissing as e:
                plan.missing.append(dict(suite=s, task="all", reason=str(e)))
                continue
            clean = clean.spread(limit) if limit else clean
            plan.tasks.append(Task(s, "clean", clean))
            perturbed = [Task(s, typo_task(rate), add_typos_to_pairs(clean, rate, seed)) for rate in typo_rates] \
                if s == "robustness" else visual_tasks(clean, visual_kinds, visual_rates, seed)
            for task in perturbed:
                plan.tasks.append(task)
                summarize(s, f"drop @ {task.name}", ("clean", task.name), kind="drop")
    return plan


def visual_tasks(clean: StsData, kinds: tuple[str, ...], rates: tuple[float, ...], seed: int) -> list[Task]:
    """The visual suite's perturbed tasks: both sentences of every pair, seeded, per kind and rate or level."""
    tasks = []
    for kind in kinds:
        if kind in TEXT_PERTURBATIONS:
            tasks += [Task("visual", f"{kind} {rate:g}", perturb_pairs(clean, TEXT_PERTURBATIONS[kind], rate, seed, kind),
                           perturbation=kind, level=rate) for rate in rates]
        else:  # the text stays clean; the encoder perturbs its rendering (PerturbedPixelEncoder)
            tasks += [Task("visual", f"{kind} {level:g}",
                           replace(clean, source=f"{clean.source} + {kind} {level:g} on the rendering "
                                                             f"(seed {seed})"),
                           perturbation=kind, level=level, on_pixels=True, seed=seed)
                      for level in VISUAL_IMAGE_LEVELS[kind]]
    return tasks


def typo_task(rate: float) -> str:
    return f"typos {rate:g}"


def add_typos_to_pairs(data: StsData, rate: float, seed: int) -> StsData:
    """Both sides of every pair with character typos at `rate`; the same seed gives the same text."""
    from pixelrep.render import add_typos

    return perturb_pairs(data, add_typos, rate, seed, "typos")


def perturb_pairs(data: StsData, perturb, rate: float, seed: int, label: str) -> StsData:
    """Both sides of every pair through `perturb(text, rate, rng)`, one Generator seeded with `seed`
    drawn through sentence1 then sentence2: the same seed gives the same text."""
    rng = np.random.default_rng(seed)
    s1 = [perturb(t, rate, rng) for t in data.sentence1]
    s2 = [perturb(t, rate, rng) for t in data.sentence2]
    return StsData(s1, s2, data.score.copy(), data.skipped, f"{data.source} + {label} {rate:g} (seed {seed})", data.rows)


def _is_cross(pair: str) -> bool:
    a, b = pair.split("-")
    return a != b


@dataclass
class ModelRun:
    """One model's results over a plan."""

    results: list[dict]                 # per task: suite, task, spearman, pearson, n, skipped_rows, source
    summaries: list[dict]               # suite, name, spearman, pearson, tasks, complete
    predictions: dict[tuple[str, str], np.ndarray]
    seconds: float


def evaluate_plan(model, plan: Plan, batch_size: int = 64, progress: bool = True, desc: str = "") -> ModelRun:
    """Score every task of `plan` with `model` (anything with encode()), then its summaries."""
    from pixelrep import PixelEncoder

    start = time.perf_counter()
    cached = CachedEncoder(model)
    results, predictions = [], {}
    for task in tqdm(plan.tasks, desc=desc or "STS", unit="task", disable=not progress):
        row = dict(suite=task.suite, task=task.name)
        if task.perturbation is not None:
            row.update(perturbation=task.perturbation, level=task.level, on_pixels=task.on_pixels)
        if task.on_pixels and not isinstance(model, PixelEncoder):
            results.append(dict(row, spearman=None, pearson=None, n=len(task.data), skipped_rows=task.data.skipped,
                                source=task.data.source, not_applicable=IMAGE_NOT_APPLICABLE))
            continue
        # An image kind's embeddings depend on the perturbation, so they get their own cache.
        encoder = CachedEncoder(PerturbedPixelEncoder(model, kind=task.perturbation, level=task.level,
                                                      seed=task.seed)) if task.on_pixels else cached
        pred = predict_similarity(encoder, task.data.sentence1, task.data.sentence2, batch_size=batch_size)
        scores = score_predictions(pred, task.data.score)
        results.append(dict(row, **scores, skipped_rows=task.data.skipped, source=task.data.source))
        predictions[(task.suite, task.name)] = pred
    return ModelRun(results, summarize_results(plan.summaries, results), predictions, time.perf_counter() - start)


def summarize_results(summaries: list[Summary], results: list[dict]) -> list[dict]:
    """Compute each summary over the tasks that ran; one with none of its tasks is left out."""
    by_key = {(r["suite"], r["task"]): r for r in results}
    out = []
    for s in summaries:
        # A row without a score (an image task of a text model) counts as absent.
        present = [by_key[(s.suite, t)] for t in s.tasks
                   if (s.suite, t) in by_key and by_key[(s.suite, t)]["spearman"] is not None]
        if s.kind == "drop":
            if len(present) != 2:
                continue
            values = {m: present[0][m] - present[1][m] for m in ("spearman", "pearson")}
        elif present:
            values = {m: float(np.mean([r[m] for r in present])) for m in ("spearman", "pearson")}
        else:
            continue
        out.append(dict(suite=s.suite, name=s.name, kind=s.kind, **values, tasks=[r["task"] for r in present],
                        complete=len(present) == len(s.tasks), expected=len(s.tasks)))
    return out
