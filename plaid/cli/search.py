"""`plaid search`: Partial Order Pruning on a target."""

from __future__ import annotations

import argparse
from pathlib import Path

from plaid.cli.render import ProgressBars, console, print_json

EPILOG = """\
examples:
  plaid search                                   embedded default: host target, pl1a, digits-affine, budget 12
  plaid search --space pl1a --budget 30 --window 1.5:3
  plaid search --dataset cifar10:/data/cifar-10-batches-py --epochs 5
  plaid search --train-cmd 'python train.py --arch {arch} --out {out}'
  plaid search --train-cmd 'python train.py --arch {arch} --seed {seed} --out {out}' --repeats 3
  plaid search --accuracy-table accs.csv --strategy random
  plaid search --workers 2 --budget 24                  two proxy trainings at a time, one per core
  plaid search --train-cmd 'python train.py --arch {arch} --out {out}' --workers 4
  plaid search --ray auto --workers 8 --ray-gpus-per-trial 1 --device cuda   8 at once on a Ray cluster, 1 GPU each
  plaid search --resume runs/20261125-190000-host-pl1a-pop --budget 40
  plaid search --space pl1aseg                   decoder search on digits-seg, mIoU on the front (PL1A-Seg baseline)
  plaid search --space df --resolution 160x160   latencies of DF nets at 160x160 inputs (the table measures them there)
  plaid search --space pl1aseg --backbone-checkpoint pl1a.pt --dataset cityscapes:/data/cityscapes
  plaid search --space dfseg --backbone df1      DF-Seg decoders on DF1 (DF1-Seg the baseline)

Every trained candidate is committed to the run's journal the moment it finishes;
--resume continues a run with its own options and budget (raise it with --budget),
replaying what was trained; a resumed run never reports fewer trainings than it holds.
With --workers N, N trainings are in flight at once in N worker processes (cores // N
threads each); a worker that dies mid-training is replaced and its net trained again (at
most twice); --resume trains again what was in flight when the run stopped.
With --ray ADDRESS (or auto) the N trainings are Ray tasks on that running cluster
(pip install 'plaid[ray]'); a resume may name another cluster with --ray.
A segmentation space (pl1aseg, dfseg) searches the decoder on its fixed backbone: the
backbone's weights come from --backbone-checkpoint (a state_dict of the backbone or of a
classifier of that arch, e.g. from `plaid train`), else the classification proxy trains it
once on digits-affine and caches it under ~/.cache/plaid/backbones ($PLAID_CACHE); its
features are computed once and each decoder is trained on them; accuracy is val mIoU, and
each net's per-class IoU goes to RUN/segmentation/.
"""


DEFAULT_BUDGET = 12
MAX_REPEATS = 1000

# defaults of the options that a resumed run takes from its config.json
_DEFAULTS = {"target": "host", "space": "", "dataset": None, "window": None, "strategy": "pop",
             "train_cmd": None, "accuracy_table": None, "epochs": 3, "proxy_resolution": 32, "proxy_unstride": 1,
             "train_limit": None, "backbone": None, "backbone_checkpoint": None, "seg_resolution": 64,
             "device": "cpu", "seed": 0, "pool": None, "table": "", "resolution": None,
             "margin": None, "audit": 0.05, "repeats": 0, "workers": 1}


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="find the speed/accuracy front on a target (POP)",
                       description="Search a space for the best speed/accuracy trade-off on a target with "
                                   "Partial Order Pruning. Latency comes from the target's table (measured "
                                   "first if needed); accuracy from the built-in proxy trainer, your command, "
                                   "or a table.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default=_DEFAULTS["target"], help="target preset (default host)")
    p.add_argument("--space", default=_DEFAULTS["space"], help="space (default: the target's)")
    p.add_argument("--dataset", default=_DEFAULTS["dataset"],
                   help="classification: digits-affine or digits (built in), cifar10:PATH or imagefolder:PATH "
                        "(default digits-affine); segmentation spaces: digits-seg (built in), cityscapes:PATH "
                        "or segfolder:PATH (default digits-seg)")
    p.add_argument("--budget", type=int, help="trainings (default 12; with --resume, the run's own)")
    p.add_argument("--window", metavar="MIN:MAX", help="latency window in ms (default: whole range)")
    p.add_argument("--strategy", default=_DEFAULTS["strategy"],
                   help="pop, random-pruned, random or evolution (default pop)")
    p.add_argument("--train-cmd", metavar="CMD", help="your training command with {arch} and {out}")
    p.add_argument("--accuracy-table", metavar="FILE", help="CSV/JSON of arch -> accuracy (benchmarking)")
    p.add_argument("--epochs", type=int, default=_DEFAULTS["epochs"], help="proxy training epochs (default 3)")
    p.add_argument("--proxy-resolution", type=int, default=_DEFAULTS["proxy_resolution"], help="proxy training input size (default 32)")
    p.add_argument("--proxy-unstride", type=int, default=_DEFAULTS["proxy_unstride"], metavar="N",
                   help="run the last N stride-2 convolutions of the stem at stride 1 while proxy training, so "
                        "that a small proxy input leaves the last stage a map larger than 1x1 (default 1; 0: "
                        "the net exactly as built, as runs before this option)")
    p.add_argument("--train-limit", type=int, help="cap on training images per candidate")
    p.add_argument("--backbone", metavar="ARCH",
                   help="decoder spaces: the fixed backbone, a zoo name (df1, df2, dflite) or an arch string "
                        "of the space's backbone space (default: the space's preset, DF2 for dfseg)")
    p.add_argument("--backbone-checkpoint", metavar="PATH",
                   help="segmentation spaces: the fixed backbone's weights (a torch state_dict of the backbone or "
                        "of a classifier of that arch; default: trained once by the classification proxy, cached)")
    p.add_argument("--seg-resolution", type=int, default=_DEFAULTS["seg_resolution"], metavar="N",
                   help="segmentation spaces: side of the square images the decoders train on (default 64)")
    p.add_argument("--device", default=_DEFAULTS["device"], help="cpu or cuda for the proxy trainer")
    p.add_argument("--seed", type=int, default=_DEFAULTS["seed"])
    p.add_argument("--pool", type=int, default=_DEFAULTS["pool"],
                   help="explicit cap on the candidates (default: a finite space whole, up to 10^6; "
                        "else a 4096-net sample topped up as the search goes)")
    p.add_argument("--margin", type=float, default=_DEFAULTS["margin"], metavar="DELTA",
                   help="prune only below nets beaten by more than DELTA accuracy (e.g. 0.01 = 1 point; "
                        "default: learnt from the run's own comparable pairs)")
    p.add_argument("--audit", type=float, default=_DEFAULTS["audit"], metavar="SHARE",
                   help="share of the trainings spent on pruned candidates to measure false prunes "
                        "(default 0.05; 0 turns the audit off)")
    p.add_argument("--repeats", type=int, default=_DEFAULTS["repeats"], metavar="K",
                   help="train K already-trained nets again with another seed (front members first; each "
                        "counts against the budget) to measure the seed noise, which floors the learnt "
                        "margin (default 0; not with --accuracy-table)")
    p.add_argument("--workers", type=int, default=_DEFAULTS["workers"], metavar="N",
                   help="train N candidates at once, in N worker processes with cores // N threads each "
                        "(default 1: one at a time, in this process)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the trainings as tasks on this Ray cluster (auto: RAY_ADDRESS or the one "
                        "`ray start` began here), --workers of them at once; needs pip install 'plaid[ray]'")
    p.add_argument("--ray-cpus-per-trial", type=float, metavar="N",
                   help="CPUs Ray reserves for each training (default 1)")
    p.add_argument("--ray-gpus-per-trial", type=float, metavar="N",
                   help="GPUs Ray reserves for each training (default 0; a fraction shares one)")
    p.add_argument("--table", default=_DEFAULTS["table"], help="latency table file (default: the target's)")
    p.add_argument("--resolution", default=_DEFAULTS["resolution"], metavar="HxW",
                   help="input size the latencies are for (default: the target's for the space, e.g. 384x640 for "
                        "pl1a on host); the table's units are measured at it")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go (default ./runs)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue the run in this folder")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_search)


def _config(args):
    from plaid.errors import UsageError
    from plaid.search.run import SearchConfig, parse_window
    from plaid.search.strategies import STRATEGIES

    STRATEGIES.get(args.strategy)
    if args.train_cmd is not None and not args.train_cmd.strip():
        raise UsageError("--train-cmd is empty: give your training command with {arch} and {out}, "
                         "or leave the flag out for the built-in proxy trainer")
    if args.accuracy_table is not None and not args.accuracy_table.strip():
        raise UsageError("--accuracy-table is empty: give a .csv or .json file")
    if args.train_cmd and args.accuracy_table:
        raise UsageError("give either --train-cmd or --accuracy-table, not both")
    budget = DEFAULT_BUDGET if args.budget is None else args.budget
    for flag, v, most in (("--budget", budget, 10**7), ("--epochs", args.epochs, 10**5), ("--pool", args.pool, 10**7),
                          ("--train-limit", args.train_limit, 10**9)):
        if v is not None and v < 1:
            raise UsageError(f"{flag} must be >= 1, got {v}")
        if v is not None and v > most:
            raise UsageError(f"{flag} must be at most {most}, got {v}")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
    if args.margin is not None and not 0 <= args.margin < 1:
        raise UsageError(f"--margin must be in [0, 1) (accuracy units), got {args.margin}")
    if not 0 <= args.audit < 0.5:
        raise UsageError(f"--audit must be a share in [0, 0.5), got {args.audit}")
    if not 0 <= args.repeats <= MAX_REPEATS:
        raise UsageError(f"--repeats must be in 0..{MAX_REPEATS}, got {args.repeats}")
    if args.repeats and args.accuracy_table:
        raise UsageError("--repeats retrains nets with other seeds, and an --accuracy-table holds one accuracy "
                         "per net: use the proxy trainer or --train-cmd with {seed}")
    from plaid.search.workers import check_workers

    check_workers(args.workers)
    if args.proxy_resolution < 32:
        raise UsageError(f"--proxy-resolution must be >= 32, got {args.proxy_resolution}")
    if not 0 <= args.proxy_unstride <= 4:
        raise UsageError(f"--proxy-unstride must be in 0..4, got {args.proxy_unstride}")
    if not 32 <= args.seg_resolution <= 4096:
        raise UsageError(f"--seg-resolution must be in 32..4096, got {args.seg_resolution}")
    if args.backbone_checkpoint is not None and not Path(args.backbone_checkpoint).is_file():
        raise UsageError(f"--backbone-checkpoint {args.backbone_checkpoint}: no such file")
    evaluator = "command" if args.train_cmd else "table" if args.accuracy_table else "proxy"
    from plaid.archinfo import parse_resolution

    resolution = parse_resolution(args.resolution) if args.resolution else None
    cfg = SearchConfig(target=args.target, resolution=resolution, space=args.space, dataset=args.dataset or "", budget=budget,
                        window=parse_window(args.window) if args.window else None, strategy=args.strategy,
                        seed=args.seed, pool=args.pool, margin=args.margin, audit=args.audit,
                        repeats=args.repeats, evaluator=evaluator, train_cmd=args.train_cmd or "",
                        accuracy_table=args.accuracy_table or "", epochs=args.epochs,
                        proxy_resolution=args.proxy_resolution, proxy_unstride=args.proxy_unstride,
                        train_limit=args.train_limit, seg_resolution=args.seg_resolution,
                        backbone=(args.backbone or "").strip(),
                        backbone_checkpoint=str(Path(args.backbone_checkpoint).resolve()) if args.backbone_checkpoint
                        else "",
                        device=args.device, table=args.table, workers=args.workers, batch=args.workers)
    return _ray_options(args, cfg)


def _ray_options(args, cfg):
    """``cfg`` with the --ray options applied (checked; Ray itself must be importable). A
    resumed Ray run keeps its cluster unless --ray names another."""
    import dataclasses

    from plaid.errors import UsageError
    from plaid.search.raypool import check_per_trial, import_ray

    if args.ray is not None and not args.ray.strip():
        raise UsageError("--ray is empty: give the cluster's address (host:port) or auto")
    address = args.ray.strip() if args.ray is not None else cfg.ray
    if not address:
        for flag, v in (("--ray-cpus-per-trial", args.ray_cpus_per_trial),
                        ("--ray-gpus-per-trial", args.ray_gpus_per_trial)):
            if v is not None:
                raise UsageError(f"{flag} is for Ray tasks: give --ray ADDRESS (or auto) too")
        return cfg
    import_ray()  # or one line saying how to install it
    cpus = cfg.ray_cpus_per_trial if args.ray_cpus_per_trial is None else args.ray_cpus_per_trial
    gpus = cfg.ray_gpus_per_trial if args.ray_gpus_per_trial is None else args.ray_gpus_per_trial
    cpus, gpus = check_per_trial(cpus, "--ray-cpus-per-trial"), check_per_trial(gpus, "--ray-gpus-per-trial")
    if not cpus and not gpus:
        raise UsageError("a trial needs some resource: --ray-cpus-per-trial and --ray-gpus-per-trial are both 0")
    return dataclasses.replace(cfg, ray=address, ray_cpus_per_trial=cpus, ray_gpus_per_trial=gpus)


def report_lines(summary: dict) -> list[str]:
    """The pruning rule's own account: margin, violations seen, probes, audit, baselines."""
    m, a = summary.get("margin") or {}, summary.get("audit") or {}
    lines = []
    if m:
        how = "fixed" if m.get("fixed") else f"learnt from {m.get('comparable_pairs', 0)} comparable pairs"
        rate = f" ({m['violation_rate']:.1%})" if m.get("violation_rate") is not None else ""
        lines.append(f"margin    δ = {m['delta']:.4f} ({how}); order violations seen {m.get('violations', 0)}{rate}, "
                     f"latency inversions {m.get('latency_inversions', 0)}; probes {summary.get('probes', 0)}")
    if a:
        if a.get("audited"):
            lo, hi = a["false_prune_rate_ci95"]
            lines.append(f"audit     {a['audited']} pruned nets trained: {a['false_prunes']} would have lifted the "
                         f"front (false-prune rate {a['false_prune_rate']:.1%}, 95% CI {lo:.1%}-{hi:.1%}); "
                         f"{a['contradictions']} contradicted their pruner, {a['restored']} restored")
        else:
            lines.append(f"audit     none yet ({a.get('share', 0):.0%} of the trainings goes to pruned nets; "
                         f"the first after {int(1 / a['share']) if a.get('share') else 0} trainings)")
    reps = summary.get("repeats") or []
    if reps:
        n = sum(len(r["seeds"]) - 1 for r in reps)
        if m.get("fixed"):
            how = f"margin fixed at {m['delta']:.4f}, not floored"
        else:
            how = f"margin floor {m['floor']:.3f}" if m.get("floor") is not None else "no margin floor"
        metric = "mIoU" if summary.get("metric") == "mIoU" else "top-1"
        lines.append(f"seed noise ±{summary['seed_noise']:.3f} {metric} from {n} repeat{'s' if n != 1 else ''} "
                     f"({how})")
    for line in summary.get("baselines_beaten", []):
        lines.append(f"baseline  {line}")
    w = summary.get("workers") or {}
    ray = (w.get("session") or {}).get("ray")
    if ray:
        session = w["session"]
        per = ", ".join(f"{k} {v['finished']} ({v['seconds']:.0f} s)" for k, v in sorted(session["per_node"].items()))
        died = len(session.get("deaths", []))
        again = f"; {died} lost with a Ray worker or node and trained again" if died else ""
        nodes = f"{ray['nodes']} node{'s' if ray['nodes'] != 1 else ''}"
        lines.append(f"ray       {ray['in_flight']} in flight on {ray.get('gcs_address') or ray['address']} ({nodes}; "
                     f"{ray['cpus_per_trial']:g} CPU, {ray['gpus_per_trial']:g} GPU per trial); "
                     f"trainings per node: {per or 'none this session'}{again}")
    elif w.get("processes", 1) > 1:
        per = ", ".join(f"{k} {v['trainings']} ({v['seconds']:.0f} s)" for k, v in sorted(w["trained_by"].items()))
        died = len(w.get("session", {}).get("deaths", []))
        again = f"; {died} lost to a dying worker and trained again" if died else ""
        threads = f"{w['threads']} thread{'s' if w['threads'] != 1 else ''}"
        lines.append(f"workers   {w['processes']} processes x {threads}; trainings per worker: {per}{again}")
    return lines


def cmd_search(args) -> int:
    import dataclasses

    from plaid.errors import UsageError
    from plaid.search.run import execute, load_run, new_run_dir

    if args.resume:
        changed = [f"--{k.replace('_', '-')}" for k, v in _DEFAULTS.items() if getattr(args, k) != v]
        if changed:
            raise UsageError(f"--resume continues a run with its own options; only --budget may change "
                             f"(got {', '.join(changed)})")
        cfg = load_run(args.resume)
        if args.budget is not None:
            if args.budget < 1:
                raise UsageError(f"--budget must be >= 1, got {args.budget}")
            cfg = dataclasses.replace(cfg, budget=args.budget)
        cfg = _ray_options(args, cfg)  # a resume may run on another cluster
        run = args.resume
    else:
        cfg = _config(args)
        run = new_run_dir(args.runs_dir, dataclasses.replace(cfg, space=cfg.space or _default_space(cfg.target)))
    if cfg.ray:
        run = run.resolve()  # the Ray workers' working folders are not this one
    c = console()
    quiet = args.json
    with ProgressBars(enabled=not quiet) as bars:
        trained = {"n": 0}

        def on_result(ev, state):
            trained["n"] += 1
            bars("search", trained["n"], max(cfg.budget, trained["n"]), f"{ev.latency:.2f} ms acc {ev.accuracy:.3f}")

        summary = execute(cfg, run, resume=bool(args.resume), progress=bars,
                          log=(lambda m: None) if quiet else (lambda m: c.print(m)), on_result=on_result)
    if quiet:
        print_json(summary)
        return 0
    from rich.table import Table

    t = Table(title=f"front: {summary['space']} on {summary['target']} ({summary['strategy']})", title_justify="left")
    for col, just in (("latency ms", "right"), (summary.get("metric", "accuracy"), "right"), ("arch", "left")):
        t.add_column(col, justify=just)
    for e in summary["front"]:
        t.add_row(f"{e['latency']:.3f}", f"{e['accuracy']:.4f}", e["arch"])
    c.print(t)
    exact = "exact" if summary["pruned_fraction_is_exact"] else "estimated"
    c.print(f"trained   {summary['trained']} ({summary['replayed_from_journal']} from the journal), "
            f"pruned {summary['pruned']} of {summary['candidates']} candidates "
            f"({summary['pruned_fraction']:.1%}, {exact}); stop: {summary['stop_reason']}")
    for line in report_lines(summary):
        c.print(line)
    c.print(f"run       {summary['run']}  (config.json, journal.sqlite, front.json, result.json, front.png)")
    return 0


def _default_space(target: str) -> str:
    from plaid.targets import load_target

    return load_target(target).space
