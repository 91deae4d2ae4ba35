"""`plaid train`: full training of a front member or a zoo net (plaid.train.full)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plaid.cli.render import ProgressBars, print_json

EPILOG = """\
examples:
  plaid train --front runs/RUN -o trained/best            the front's most accurate member,
                                                          on the run's dataset at its proxy resolution
  plaid train --front runs/RUN --member 0 --epochs 60 -o trained/fastest
  plaid train --front runs/RUN --all -o trained/          every member, into trained/member-K/
  plaid train --front runs/RUN --resolution 384x640 --device cuda -o trained/best-384x640
  plaid train df1 --dataset cifar10:/data/cifar-10-batches-py --epochs 90 --label-smoothing 0.1 -o trained/df1
  plaid train 'pl1a:48x4-96x8-192x4' --resolution 64 -o trained/pl1a
then:
  plaid export ARCH --checkpoint trained/best/model.pt --calib digits-affine -o out/best

Schedule: SGD (momentum 0.5, lr 0.4: the proxy trainer's measured settings, which beat
momentum 0.9 / lr 0.1 on the default search's front), weight decay 1e-4, linear warm-up over
the first 5% of the steps then cosine to 0, random shift by 1/8 of the side (--shift), optional label
smoothing, val top-1 after each epoch, BN statistics re-estimated at the end. OUT gets
config.json, metrics.json (per-epoch history), state.pt while training and model.pt at the
end: the weights with their arch, dataset, resolution, normalisation and epochs, which
plaid export takes as its defaults. Interrupted (Ctrl-C, kill -9), the same command resumes
from the last save (every epoch, and every 2 min inside one); a finished OUT is left as it is
(--force trains again). The built-in datasets and loaders only: with your own training script
(plaid search --train-cmd), train the arch strings of RUN/front.json with it and give its
state_dict to plaid export --checkpoint.
"""

MAX_EPOCHS = 100_000


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a front member or a zoo net in full, for deployment",
                       description="Train an architecture in full (cosine schedule, warm-up, augmentation, "
                                   "weight decay) at the resolution it will run at: a member of a search's "
                                   "front (--front RUN) or a zoo name / arch string. Resumable.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="ARCH|NAME", help="zoo name or arch string (or use --front)")
    p.add_argument("--front", type=Path, metavar="RUN", help="a search run folder: train members of its front")
    p.add_argument("--member", type=int, metavar="K", help="front member K (0 = fastest; default: the most accurate)")
    p.add_argument("--all", action="store_true", help="every front member, each into OUT/member-K/")
    p.add_argument("-o", "--out", type=Path, help="output folder")
    p.add_argument("--dataset", help="digits-affine, digits, cifar10:PATH or imagefolder:PATH "
                                     "(default: the run's; digits-affine for ARCH|NAME)")
    p.add_argument("--resolution", help="training input HxW (default: the run's proxy resolution; 32x32 for "
                                        "ARCH|NAME)")
    p.add_argument("--epochs", type=int, default=30, help="epochs (default 30)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=0.4, help="peak learning rate (default 0.4)")
    p.add_argument("--momentum", type=float, default=0.5, help="SGD momentum (default 0.5)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (default 1e-4)")
    p.add_argument("--warmup", type=float, default=0.05, help="share of the steps spent warming up (default 0.05)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="label smoothing (default 0, e.g. 0.1)")
    p.add_argument("--shift", type=int, help="random shift in pixels (default: 1/8 of the shorter side; 0: off)")
    p.add_argument("--seed", type=int, default=0, help="weights and shuffling seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--force", action="store_true", help="start over even if OUT holds a training")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_train)


def _jobs(args):
    """(out folder, job) pairs; every usage check happens here, before anything loads."""
    from plaid.archinfo import parse_resolution
    from plaid.errors import UsageError
    from plaid.train.full import TrainConfig, TrainJob

    if args.out is None:
        raise UsageError("give -o OUT, e.g. 'plaid train --front runs/RUN -o trained/best' (see 'plaid train --help')")
    if bool(args.model) == bool(args.front):
        raise UsageError("give a network (ARCH or zoo NAME) or --front RUN, one of the two "
                         "(see 'plaid train --help')")
    if args.member is not None and args.member < 0:
        raise UsageError(f"--member must be >= 0 (0 is the fastest member), got {args.member}")
    if (args.member is not None or args.all) and not args.front:
        raise UsageError("--member and --all pick members of a front: give --front RUN")
    if args.member is not None and args.all:
        raise UsageError("give --member K or --all, not both")
    if not 1 <= args.epochs <= MAX_EPOCHS:
        raise UsageError(f"--epochs must be within 1..{MAX_EPOCHS}, got {args.epochs}")
    if not 0 <= args.seed < 2**32:
        raise UsageError(f"--seed must be in 0..{2**32 - 1}, got {args.seed}")
    resolution = parse_resolution(args.resolution) if args.resolution else None
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                      weight_decay=args.weight_decay, warmup=args.warmup, label_smoothing=args.label_smoothing,
                      shift=args.shift, seed=args.seed, device=args.device, threads=args.threads)
    if args.model:
        return [(args.out, TrainJob(args.model, args.dataset or "digits-affine", resolution or (32, 32), cfg))], None
    from plaid.train.fromfront import pick, read_front, source

    front = read_front(args.front)
    ks = pick(front, args.member, args.all)
    if front.config.get("evaluator", "proxy") != "proxy" and not args.dataset:
        raise UsageError(f"the accuracies of {front.run} came from a training command or table, not the "
                         "built-in proxy: name the dataset with --dataset")
    if resolution is None:
        if front.proxy_resolution is None:
            raise UsageError(f"{front.run}/config.json names no proxy resolution: give --resolution HxW")
        resolution = (front.proxy_resolution, front.proxy_resolution)
    dataset = args.dataset or front.config.get("dataset") or "digits-affine"
    seed = front.config.get("seed") if isinstance(front.config.get("seed"), int) else 0
    jobs = [(args.out / f"member-{k}" if args.all else args.out,
             TrainJob(front.members[k]["arch"], dataset, resolution, cfg, split_seed=seed, source=source(front, k)))
            for k in ks]
    return jobs, front


def cmd_train(args) -> int:
    from plaid.train.fullstate import check
    from plaid.train.full import check_device, resolve_job, train

    jobs, front = _jobs(args)
    for out, job in jobs:  # every arch, resolution and OUT checked before the first training starts
        resolve_job(job)
        check(out, job, args.force)
    check_device(args.device)

    def log(msg: str) -> None:
        if not args.json:
            print(f"plaid: {msg}", file=sys.stderr, flush=True)

    if front is not None and not args.resolution and front.resolution \
            and tuple(front.resolution) != jobs[0][1].resolution:
        h, w = jobs[0][1].resolution
        log(f"training at {h}x{w}, the search's proxy resolution; the front's latencies are for "
            f"{front.resolution[0]}x{front.resolution[1]} (--resolution {front.resolution[0]}x{front.resolution[1]} "
            "trains at that)")
    results = []
    with ProgressBars(enabled=not args.json) as bars:
        for out, job in jobs:
            where = f" (front member {job.source['member']})" if job.source else ""
            log(f"{job.model}{where}: {job.cfg.epochs} epochs at {job.resolution[0]}x{job.resolution[1]} "
                f"on {job.dataset} -> {out}")
            results.append(train(job, out, force=args.force, progress=bars, log=log))
    if args.json:
        print_json(results if args.all else results[0])
        return 0
    for (out, job), m in zip(jobs, results):
        _summary(out, job, m)
    return 0


def _summary(out: Path, job, m: dict) -> None:
    h, w = job.resolution
    line = f"top-1     {m['top1']:.4f} after {m['epochs']} epochs at {h}x{w} on {job.dataset}"
    if job.source.get("proxy_top1") is not None:
        line += f" (proxy top-1 {job.source['proxy_top1']:.4f})"
    print(f"model     {m['arch'] or m['model']}")
    print(line)
    if m.get("best_epoch"):
        print(f"best      epoch {m['best_epoch']['epoch']}: val top-1 {m['best_epoch']['val_top1']:.4f}")
    print(f"time      {m['train_seconds']:.1f} s training, {m['steps']} steps")
    print(f"wrote     {out / 'model.pt'} (weights + how they were made), {out / 'metrics.json'}")
    print(f"next      plaid export '{m['arch'] or m['model']}' --checkpoint {out / 'model.pt'} -o {out / 'bundle'}")
