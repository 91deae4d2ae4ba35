"""A search run on a target: resolved config, predictor from the target's latency table,
accuracy evaluator, journal, and the run folder (config.json, journal.sqlite,
front.json, result.json, front.png).

With ``workers`` > 1 the trainings run in that many worker processes
(:class:`plaid.search.workers.WorkerPool`, ``workers`` in flight at once), each building the
config's evaluator itself, at ``cores // workers`` threads; the baseline nets of the report
are trained there too, on workers the search leaves idle. With ``ray`` set (an address or
``auto``) the trainings are Ray tasks on that cluster instead (:class:`plaid.search.raypool.RayPool`,
``workers`` in flight, the evaluator shipped once through the object store). One line per
training started, finished, failed or lost goes to ``log``."""

from __future__ import annotations

import functools
import json
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from plaid import __version__
from plaid.errors import PlaidError, UsageError
from plaid.fsio import atomic_open, atomic_write_text


_WHERE = ("ray", "ray_cpus_per_trial", "ray_gpus_per_trial")  # where trainings run: not the run's identity


# options added after runs existed -> what those runs did (left out of the identity when equal, so
# their journals still resume, and filled in when their config.json lacks them)
_NEWER = {"repeats": 0, "proxy_unstride": 0, "proxy_lr": 0.4, "backbone": "", "backbone_checkpoint": "",
          "seg_resolution": 64}


@dataclass(frozen=True)
class SearchConfig:
    target: str = "host"
    space: str = ""  # "" = the target's default
    resolution: tuple[int, int] | None = None  # latency resolution; None = the target's
    dataset: str = ""  # "" = the embedded default of the space's task (digits-affine, digits-seg)
    budget: int = 12
    window: tuple[float, float] | None = None
    strategy: str = "pop"
    seed: int = 0
    pool: int | None = None  # explicit cap on the candidates (None: a finite space whole)
    batch: int = 1
    margin: float | None = None  # pruning margin δ in accuracy units (None: learnt by the run)
    audit: float = 0.05  # share of the trainings spent auditing pruned candidates
    repeats: int = 0  # trained nets trained again with another seed, to measure the seed noise
    evaluator: str = "proxy"  # proxy | command | table
    train_cmd: str = ""
    accuracy_table: str = ""
    epochs: int = 3
    proxy_resolution: int = 32
    # stride-2 convolutions at the end of the stem run at stride 1 in proxy training (ProxyConfig.stem_unstride)
    proxy_unstride: int = 1
    proxy_lr: float = 0.8  # the proxy's SGD learning rate (ProxyConfig.lr)
    train_limit: int | None = None
    # decoder spaces: the fixed backbone (a zoo name or arch string; "" = the space's preset), its weights
    # ("" = trained once by the classification proxy and cached) and the side of the square images the
    # decoders are trained on
    backbone: str = ""
    backbone_checkpoint: str = ""
    seg_resolution: int = 64
    device: str = "cpu"
    table: str = ""  # latency table path; "" = the target's default
    workers: int = 1  # worker processes (1: in this process); the CLI sets batch to match
    ray: str = ""  # a Ray cluster's address or "auto": trainings run there as tasks ("": here)
    ray_cpus_per_trial: float = 1.0
    ray_gpus_per_trial: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["resolution"] = list(self.resolution) if self.resolution else None
        d["window"] = list(self.window) if self.window else None
        return d

    def identity(self) -> dict[str, Any]:
        """What a run's journal records and a resume must match: the resolved config
        without the budget (which a resume may raise), the number of worker processes and
        where they run (``batch``, the trainings in flight, is what the picks depend on);
        the options added since runs existed (``_NEWER``) only when they differ from what
        those runs did, so their journals still resume."""
        return {k: v for k, v in self.to_json().items()
                if k not in ("budget", "workers", *_WHERE) and not (k in _NEWER and v == _NEWER[k])}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "SearchConfig":
        d = dict(d)
        d["resolution"] = tuple(d["resolution"]) if d.get("resolution") else None
        d["window"] = tuple(d["window"]) if d.get("window") else None
        for k, old in _NEWER.items():  # a run made before the option existed ran without it
            d.setdefault(k, old)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def parse_window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise UsageError(f"bad --window {text!r}: expected MIN:MAX in ms, e.g. 2:8") from None
    if not (0 <= lo <= hi):
        raise UsageError(f"bad --window {text!r}: need 0 <= MIN <= MAX")
    return lo, hi


def new_run_dir(runs: Path, cfg: SearchConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = runs / f"{stamp}-{cfg.target}-{cfg.space}-{cfg.strategy}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def load_run(run: Path) -> SearchConfig:
    f = run / "config.json"
    if not f.is_file():
        raise UsageError(f"{run} is not a search run folder (no config.json)")
    try:
        return SearchConfig.from_json(json.loads(f.read_text())["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UsageError(f"{f}: unreadable run config ({exc})") from None


def write_json(path: Path, doc: Any) -> None:
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def make_evaluator(cfg: SearchConfig, space, run: Path, log: Callable[[str], None]):
    from plaid.train.evaluators import evaluator_for_search

    return evaluator_for_search(cfg, space, run, log)


def worker_evaluator(cfg_json: dict[str, Any], run: str):
    """The evaluator of a (resolved) search config, built inside a worker process: the
    :class:`~plaid.search.workers.WorkerPool` factory, as ``functools.partial`` of this."""
    cfg = SearchConfig.from_json(cfg_json)
    return make_evaluator(cfg, search_space(cfg), Path(run), None)


def search_space(cfg: SearchConfig, default: str = ""):
    """The space ``cfg`` searches: ``cfg.space`` (else ``default``); for a decoder space with
    ``cfg.backbone`` (a zoo name such as ``df1`` or an arch string), the space on that fixed
    backbone (``get_space(name, backbone=...)``)."""
    from plaid.spaces import get_space

    space = get_space(cfg.space or default)
    if not cfg.backbone:
        return space
    if not hasattr(space, "backbone_space"):
        raise UsageError(f"--backbone is for decoder spaces (pl1aseg, dfseg); {space.name!r} has no fixed backbone")
    from plaid.zoo import ZOO

    text = cfg.backbone.strip()
    if text in ZOO and ZOO.get(text).arch:
        text = ZOO.get(text).arch
    return get_space(space.name, backbone=text)


def _pool(cfg: SearchConfig, run: Path, log: Callable[[str], None], evaluator=None):
    """The trainer of a run (a context manager): Ray tasks with ``ray`` set, a worker pool
    with ``workers`` > 1, else a null context (in process)."""
    from plaid.search.workers import WorkerPool, check_workers, cores, threads_per_worker

    check_workers(cfg.workers)
    space = getattr(evaluator, "space", None)
    metric = "mIoU" if getattr(space, "task", "") == "segmentation" else "top-1"
    if cfg.ray:
        from plaid.search.raypool import RayPool

        if cfg.workers == 1:
            log("--ray with --workers 1: one training at a time on the cluster (--workers N keeps N in flight)")
        pool = RayPool(_shippable(evaluator), cfg.ray, cfg.workers, cpus=cfg.ray_cpus_per_trial,
                       gpus=cfg.ray_gpus_per_trial)
        pool.on_event = functools.partial(_worker_line, pool, log, metric=metric)
        return pool
    if cfg.workers == 1:
        return nullcontext(None)
    have = cores()
    if cfg.evaluator == "proxy" and cfg.device == "cpu" and cfg.workers > have:
        log(f"--workers {cfg.workers} on {have} cores: proxy trainings will share cores (1 thread each) "
            f"and each run slower; {have} workers use this machine fully")
    pool = WorkerPool(functools.partial(worker_evaluator, cfg.to_json(), str(run)), cfg.workers,
                      threads=threads_per_worker(cfg.workers, have))
    pool.on_event = functools.partial(_worker_line, pool, log, metric=metric)
    return pool


def _shippable(evaluator):
    """A copy of the evaluator without the driver's log and progress callbacks (which hold
    this terminal), to travel to Ray workers."""
    import copy

    shipped = copy.copy(evaluator)
    for attr in ("log", "progress"):
        if getattr(shipped, attr, None) is not None:
            setattr(shipped, attr, None)
    return shipped


def _worker_line(pool, log: Callable[[str], None], kind: str, worker: str, key: str, detail: dict,
                 metric: str = "top-1") -> None:
    """One progress line per training started / finished / failed / lost, with the pool's
    per-worker tally."""
    what = f"baseline {key}" if detail.get("background") else key
    if kind == "started":
        log(f"{worker} training {what}  | {pool.status()}")
    elif kind == "finished":
        log(f"{worker} trained  {what} in {detail['seconds']:.1f} s: {metric} {detail['accuracy']:.4f}  "
            f"| {pool.status()}")
    elif kind == "failed":
        log(f"{worker} failed   {what}: {detail['error']}")
    elif kind == "died":
        then = (f"training it again (retry {detail['attempt']} of {detail['retries']})" if detail["again"]
                else "no retries left")
        log(f"{worker} died ({detail['how']}) while training {what}: {then}")


def _workers_report(cfg: SearchConfig, result, pool) -> dict[str, Any]:
    """Who trained the candidates (from the evaluated list, so the journal's part counts)
    and, with worker processes, what this session's workers did (deaths included)."""
    trained_by: dict[str, dict[str, Any]] = {}
    for e in result.evaluated:
        w = trained_by.setdefault(e.worker or "unrecorded", {"trainings": 0, "seconds": 0.0})
        w["trainings"] += 1
        w["seconds"] = round(w["seconds"] + (e.seconds or 0.0), 3)
    doc: dict[str, Any] = {"processes": cfg.workers, "in_flight": cfg.batch, "trained_by": trained_by}
    if pool is None:
        return {**doc, "in_process": True}
    return {**doc, "threads": pool.threads, "session": pool.to_json()}


def _baselines_in(pool, space, run: Path, evaluator_id: str):
    """Queue the baselines that ``run/baselines.json`` lacks as background tasks of the
    pool; returns the accuracy callable that collects them (or trains one it lacks)."""
    from plaid.search.baselines import space_baselines

    try:
        cache = json.loads((run / "baselines.json").read_text())
        done = set(cache.get("nets", {})) if cache.get("evaluator") == evaluator_id else set()
    except (OSError, ValueError, AttributeError):
        done = set()
    for _, arch in space_baselines(space):
        key = space.key(arch)
        if key not in done:
            pool.submit(f"baseline {key}", arch, 0, key, background=True)

    def accuracy(arch) -> float:
        ticket = f"baseline {space.key(arch)}"
        try:
            return pool.result(ticket)
        except KeyError:
            pool.submit(ticket, arch, 0, space.key(arch), background=True)
            return pool.result(ticket)

    return accuracy


def front_plot(path: Path, result, baselines: dict[str, float], title: str, nets: list[dict] | None = None,
               ylabel: str = "accuracy (proxy top-1)") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    ev = result.evaluated
    ax.scatter([e.latency for e in ev], [e.accuracy for e in ev], s=14, color="tab:grey", label="trained", zorder=2)
    fr = result.front
    ax.step([e.latency for e in fr], [e.accuracy for e in fr], where="post", color="tab:red", zorder=3)
    ax.scatter([e.latency for e in fr], [e.accuracy for e in fr], s=26, color="tab:red", label="front", zorder=4)
    for k, b in enumerate(nets or []):
        ax.scatter([b["latency"]], [b["accuracy"]], marker="*", s=90, color="tab:green", zorder=5,
                   label="hand-designed" if k == 0 else None)
        ax.annotate(b["name"], (b["latency"], b["accuracy"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=7, color="tab:green")
    for name, lat in baselines.items():
        ax.axvline(lat, color="tab:blue", lw=0.8, ls="--", zorder=1)
        ax.text(lat, ax.get_ylim()[0], f" {name}", rotation=90, va="bottom", fontsize=7, color="tab:blue")
    ax.set_xlabel("predicted latency on target (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\ntrained {result.trained}, pruned {result.pruned} of {result.candidates} candidates",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    try:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix.lstrip(".") or None)
    finally:
        plt.close(fig)
    return path


def _front_entry(e, evaluator) -> dict:
    """A front member, with its trained weights when the evaluator kept them (ready for
    `plaid export ARCH --checkpoint PATH`)."""
    entry = e.to_json()
    path = evaluator.checkpoint_path(e.key) if hasattr(evaluator, "checkpoint_path") else None
    if path is not None and path.is_file():
        entry["checkpoint"] = str(path)
    iou = evaluator.iou_path(e.key) if hasattr(evaluator, "iou_path") else None
    if iou is not None and iou.is_file():
        entry["per_class_iou"] = str(iou)
    return entry


def execute(cfg: SearchConfig, run: Path, resume: bool, progress=None, log: Callable[[str], None] = print,
            on_result=None) -> dict[str, Any]:
    """Resolve the config, make sure the target's latency table covers the space, run the
    search with a journal in ``run``, write the outputs. Returns the summary.

    On ``resume`` the run's journal must hold this config's identity, checked before
    anything is built or trained. A new run validates everything before its folder is
    created, and removes the folder again when it fails before a training is journaled."""
    from plaid.lut.units import check_space
    from plaid.search.journal import Journal
    from plaid.targets import load_target

    from plaid.search.workers import check_workers

    check_workers(cfg.workers, "workers")
    journal = Journal.open(run / "journal.sqlite", cfg.identity(), create=False) if resume else None
    try:
        target = load_target(cfg.target)
        space = search_space(cfg, target.space)
        dataset = _dataset(cfg, space)
        check_space(space)
        res = cfg.resolution or target.resolution(space.name)
        from plaid.archinfo import check_resolution

        check_resolution(space.task, res)
        cfg = SearchConfig.from_json({**cfg.to_json(), "space": space.name, "resolution": list(res),
                                      "dataset": dataset, "backbone": space.backbone if cfg.backbone else ""})
        if cfg.table and not Path(cfg.table).is_file():
            raise UsageError(f"no latency table file at {cfg.table} (leave --table out to use the target's own)")
        evaluator = make_evaluator(cfg, space, run, log)
        if not resume:
            _create_run_dir(run)
    except BaseException:
        if journal is not None:
            journal.close()
        raise
    try:
        if resume:
            cfg = _resume_budget(cfg, run, len(journal), log)
        else:
            _write_config(run, cfg, target, space)
            journal = Journal.open(run / "journal.sqlite", cfg.identity(), create=True)
        return _search(cfg, target, space, run, journal, evaluator, progress, log, on_result)
    except BaseException:
        if not resume and (journal is None or len(journal) == 0):
            if journal is not None:
                journal.close()
            shutil.rmtree(run, ignore_errors=True)  # nothing trained: leave no half run folder behind
        raise
    finally:
        if journal is not None:
            journal.close()


def _dataset(cfg: SearchConfig, space) -> str:
    """The run's dataset (the task's default when none was given), checked against the space."""
    from plaid.train.evaluators import dataset_for

    if cfg.backbone_checkpoint and space.task != "segmentation":
        raise UsageError(f"--backbone-checkpoint is for segmentation spaces (pl1aseg, dfseg); {space.name!r} "
                         f"is a {space.task} space")
    return dataset_for(cfg.dataset, space)


def metric_label(space) -> str:
    """What the accuracy axis of a report holds: mIoU for a segmentation space."""
    return "mIoU" if getattr(space, "task", "classification") == "segmentation" else "accuracy"


def _create_run_dir(run: Path) -> None:
    if run.parent.exists() and not run.parent.is_dir():
        raise UsageError(f"cannot put run folders in {run.parent}: it is not a folder")
    try:
        run.mkdir(parents=True)
    except OSError as exc:
        raise UsageError(f"cannot create run folder {run}: {exc.strerror or exc}") from None


def _write_config(run: Path, cfg: SearchConfig, target, space) -> None:
    try:
        write_json(run / "config.json", {"plaid": __version__, "config": cfg.to_json(), "target": target.to_json(),
                                          "space": space.describe()})
    except OSError as exc:
        raise UsageError(f"cannot write {run / 'config.json'}: {exc.strerror or exc}") from None


def _resume_budget(cfg: SearchConfig, run: Path, held: int, log: Callable[[str], None]) -> SearchConfig:
    """A resumed run never reports fewer trainings than its journal holds; a raised budget
    becomes the run's budget in config.json."""
    budget = cfg.budget
    if budget < held:
        log(f"the journal holds {held} trainings; a budget of {budget} keeps them all")
        budget = held
    doc = json.loads((run / "config.json").read_text())
    if budget > int(doc["config"].get("budget") or 0):
        doc["config"]["budget"] = budget
        write_json(run / "config.json", doc)
    return replace(cfg, budget=budget)


def _reported(path: Path) -> int:
    try:
        return int(json.loads(path.read_text()).get("trained", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def _search(cfg: SearchConfig, target, space, run: Path, journal, evaluator, progress, log,
            on_result) -> dict[str, Any]:
    from plaid.lut.bench import build_table, open_table
    from plaid.lut.predictor import Predictor
    from plaid.search.engine import search

    res = cfg.resolution
    table = open_table(target, space.name, Path(cfg.table) if cfg.table else None, create=True)
    with table:
        built = build_table(target, space, res, table, progress or (lambda *a: None))
        if built.measured:
            log(f"measured {built.measured} missing units into {table.path}")
        predictor = Predictor(table, space, res, bench_hint=f"plaid bench --target {target.name} --space {space.name}")
        baselines = {}
        for name in ("resnet18", "df1"):
            lat = table.get_e2e(f"{name}@{res[0]}x{res[1]}")
            if lat is not None:
                baselines[name] = lat.median_ms
        table_name = table.meta.name()
    done_before = len(journal)
    from plaid.search.baselines import beaten, evaluate_baselines

    evaluator_id = json.dumps(evaluator.describe(), sort_keys=True, default=str)
    with _pool(cfg, run, log, evaluator) as pool:
        baseline_accuracy = _baselines_in(pool, space, run, evaluator_id) if pool is not None else evaluator
        result = search(space, predictor, evaluator, cfg.budget, strategy=cfg.strategy, seed=cfg.seed,
                        window=cfg.window, journal=journal, batch=cfg.batch, pool=cfg.pool, margin=cfg.margin,
                        audit=cfg.audit, repeats=cfg.repeats, on_result=on_result, trainer=pool)
        nets = evaluate_baselines(space, predictor, baseline_accuracy, run, evaluator_id, log)
        workers = _workers_report(cfg, result, pool)
    metric = metric_label(space)
    prior = _reported(run / "result.json")
    if result.trained < prior:
        raise PlaidError(f"{run / 'result.json'} reports {prior} trainings and this search {result.trained}: "
                         "not overwriting it with fewer")
    summary = {
        "plaid": __version__,
        "run": str(run),
        "target": target.name,
        "space": space.name,
        "resolution": list(res),
        "latency_table": table_name,
        "predictor_calibrated": predictor.calibrated,
        "strategy": cfg.strategy,
        "evaluator": evaluator.describe(),
        "replayed_from_journal": min(done_before, result.trained),
        "workers": workers,
        **result.to_json(),
        "baselines_ms": baselines,
        "baselines": nets,
        "baselines_beaten": beaten(result.front, nets, metric),
        "metric": metric,
    }
    write_json(run / "result.json", summary)
    write_json(run / "front.json", {"target": target.name, "space": space.name, "resolution": list(res),
                                    "metric": metric,
                                    "front": [_front_entry(e, evaluator) for e in result.front],
                                    "baselines": nets, "baselines_beaten": summary["baselines_beaten"]})
    ylabel = "mIoU (segmentation proxy, val)" if metric == "mIoU" else "accuracy (proxy top-1)"
    front_plot(run / "front.png", result, baselines, f"{space.name} on {target.name} ({cfg.strategy})", nets, ylabel)
    summary["plot"] = str(run / "front.png")
    return summary
