"""The ``fastseg`` command: demo, train, predict, evaluate, bench.

Exit codes: 0 success; 2 bad usage or bad input (missing files, wrong shapes,
a corrupted model, ...), with a one-line message; 1 an unexpected failure.
Every file is written to a temporary file beside its destination and renamed
into place, so an interrupted command leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

#: The label conventions of ``--labels`` (those of :data:`fastseg.io.LABEL_CONVENTIONS`, written out
#: so that the command's start-up does not import the reader).
LABEL_CONVENTION_NAMES = ("brats2018", "brats2023", "msd")


class UsageError(Exception):
    """Bad input from the user: reported in one line with exit code 2."""


# ----------------------------------------------------------------------------- helpers

def _progress(items, total: int, desc: str):
    """Yield ``items`` with a progress line on stderr, only when stderr is a terminal."""
    show = sys.stderr.isatty()
    start = time.perf_counter()
    for i, item in enumerate(items, 1):
        yield item
        if show:
            print(f"\r{desc}: {i}/{total} ({time.perf_counter() - start:.1f} s)", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)


def _atomic_write(path: Path, write) -> Path:
    """``persistence.atomic_write`` (which refuses a missing folder), with permission errors as usage errors."""
    from .persistence import atomic_write

    path = Path(path)
    try:
        return atomic_write(path, write)
    except PermissionError as exc:
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror}") from None


def _save_json(path: Path, obj) -> Path:
    def write(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    return _atomic_write(path, write)


def _load_model(path):
    """The model file's :class:`~fastseg.model.PixelModel`, without scikit-learn (whose import alone
    takes about 1 s)."""
    from .persistence import _load_model as load_model

    try:
        return load_model(path)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _load_mask_file(path: Path, name: str) -> np.ndarray:
    if not path.exists():
        raise UsageError(f"{name}: no file at {str(path)!r}")
    if path.name.endswith((".nii", ".nii.gz")):
        from .io import read_label_volume

        return read_label_volume(path).labels > 0  # (Z, H, W) slices in the canonical orientation, as read_case
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False) != 0
        except Exception as exc:  # numpy's header parser lets tokenizer and syntax errors through, too
            raise UsageError(f"{name} {path.name} is not a readable .npy array ({type(exc).__name__}: {exc})") from None
    raise UsageError(f"{name}: expected a .npy or .nii/.nii.gz file, got {str(path)!r}")


# ----------------------------------------------------------------------------- commands

def cmd_demo(args) -> int:
    """Train on the shipped sample's training patients, segment its held-out ones, report and draw."""
    from .datasets import load_sample
    from .metrics import segmentation_report
    from .segmenter import PixelSegmenter

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sample = load_sample()
    train, test = sample.split == "train", sample.split == "test"
    print(f"fastseg {__version__} demo: {train.sum()} training and {test.sum()} held-out patients "
          "(real BraTS slices shipped with fastseg; cite the BraTS papers, see the README)")
    seg = PixelSegmenter(random_state=0, n_jobs=args.n_jobs)
    seg.fit(sample.images[train], sample.masks[train], sample.brain[train])
    t_fit = time.perf_counter() - t0
    t1 = time.perf_counter()
    pred = seg.predict(sample.images[test], sample.brain[test])
    t_pred = time.perf_counter() - t1
    report = segmentation_report(sample.masks[test], pred, sample.patients[test])
    print()
    print(report.format())
    print()
    print(f"mean Dice over held-out patients: {report.mean_group['dice']:.3f} "
          f"(fit {t_fit:.1f} s, predict {t_pred * 1e3 / test.sum():.1f} ms per slice)")
    result = {"fastseg_version": __version__, "segmenter": {k: v for k, v in seg.get_params().items()
                                                            if not hasattr(v, "fit")},
              "train_patients": sample.patients[train].tolist(), "fit_seconds": t_fit,
              "predict_ms_per_slice": t_pred * 1e3 / test.sum(), **report.to_dict()}
    _save_json(out / "report.json", result)
    print(f"wrote {out / 'report.json'}")
    try:
        from .viz import montage
    except ImportError:  # pragma: no cover
        montage = None
    if montage is None:
        print('skipped the picture: pip install "fastseg[viz]" for matplotlib', file=sys.stderr)
    else:
        try:
            titles = [f"{row['group']}\nDice {row['dice']:.2f}" for row in report.per_group]
            _atomic_write(out / "demo.png", lambda tmp: montage(sample.images[test], sample.masks[test], pred, tmp,
                                                               titles=titles))
            print(f"wrote {out / 'demo.png'}")
        except ImportError as exc:
            print(f"skipped the picture: {exc}", file=sys.stderr)
    return EXIT_OK


def _training_data(path: Path, split: str, labels: str | None = None):
    """The training set at ``path``.  With ``labels`` (a label convention, or "layout": each case's
    own), cases also give their label maps, in the brats2018 convention, for region models."""
    from sklearn.utils import Bunch

    from .datasets import load_slices
    from .io import find_cases, label_map, read_case
    from .regions import _regions_of

    if not path.exists():
        raise UsageError(f"--data: no file or folder at {str(path)!r}")
    cases = []
    if path.is_dir() or path.name.endswith((".nii", ".nii.gz")):
        try:
            cases = find_cases(path)
        except (FileNotFoundError, ValueError):  # not cases: a folder of slices (brats2d layout)
            if not path.is_dir():
                raise
    if cases:  # cases in any layout: one volume each, every slice that holds brain
        volumes = Bunch(images=[], masks=[], brain=[], patients=[], labels=[], spacing=[], volumes=True)
        for found in _progress(cases, len(cases), "reading cases"):
            case = read_case(found)
            if case.seg is None:
                raise UsageError(f"case {case.name} has no label volume to train on")
            keep = case.brain.any(axis=(1, 2))  # tumour-free slices too: the model must learn to leave them empty
            first, last = int(np.argmax(keep)), len(keep) - int(np.argmax(keep[::-1]))
            volumes.images.append(np.ascontiguousarray(case.images[first:last]))
            volumes.masks.append(case.seg[first:last])
            volumes.brain.append(case.brain[first:last])
            volumes.patients.append(case.name)
            volumes.spacing.append(tuple(case.spacing[::-1]))  # along (Z, H, W)
            if labels is not None:
                convention = case.convention if labels == "layout" else labels
                if convention is None:
                    raise UsageError(f"case {case.name}: its layout ({case.layout}) does not say which label "
                                     "convention its seg uses: pass --labels brats2018, brats2023 or msd")
                try:
                    found_regions = _regions_of(case.labels[first:last], convention, f"case {case.name}'s seg")
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
                volumes.labels.append(label_map(found_regions, "brats2018"))
            del case
        return volumes
    if labels is not None:
        raise UsageError(f"--regions trains on cases with label volumes (any BraTS layout); {str(path)!r} holds slices")
    data = load_slices(path, split=split)
    if data.masks is None:
        raise UsageError(f"--data {str(path)!r} has no masks (*_y.npy or 'y') to train on")
    return data


def _concatenate(parts):
    """One training set from several (brain masks derived where a part has none)."""
    from sklearn.utils import Bunch

    from .preprocessing import brain_mask

    if any(p.get("volumes") for p in parts):  # volumes and slice stacks: a list of stacks, for training only
        stacks = Bunch(images=[], masks=[], brain=[], patients=[], volumes=True, mixed=True)
        for p in parts:
            if p.get("volumes"):
                for key in ("images", "masks", "brain", "patients", "labels", "spacing"):
                    stacks.setdefault(key, []).extend(p.get(key, []))
            else:
                stacks.images.append(p.images)
                stacks.masks.append(p.masks)
                stacks.brain.append(p.brain if p.brain is not None else brain_mask(p.images))
                stacks.patients.append(None)
        shapes = {x.shape[1:] for x in stacks.images}
        if len(shapes) != 1:
            raise UsageError(f"--data sources have different slice shapes {sorted(shapes)}")
        return stacks
    shapes = {p.images.shape[1:] for p in parts}
    if len(shapes) != 1:
        raise UsageError(f"--data sources have different slice shapes {sorted(shapes)}")
    return Bunch(
        images=np.concatenate([p.images for p in parts]),
        masks=np.concatenate([p.masks for p in parts]),
        brain=np.concatenate([p.brain if p.brain is not None else brain_mask(p.images) for p in parts]),
        patients=np.concatenate([np.asarray(p.patients) for p in parts]),
    )


def cmd_train(args) -> int:
    from .model_selection import cross_validate
    from .persistence import save
    from .segmenter import PixelSegmenter

    if args.labels and not args.regions:
        raise UsageError("--labels goes with --regions (a whole-tumour model reads every non-zero label as tumour)")
    if args.regions and args.tune_threshold:
        raise UsageError("--tune-threshold tunes a whole-tumour model; it does not go with --regions")
    labels = (args.labels or "layout") if args.regions else None
    parts = [_training_data(Path(path), args.split, labels) for path in args.data]
    data = parts[0] if len(parts) == 1 else _concatenate(parts)
    params = dict(k=args.k, classifier=args.classifier, max_pixels=args.max_pixels, random_state=args.seed,
                  n_jobs=args.n_jobs, verbose=int(args.verbose))
    seg = PixelSegmenter(**params)
    if args.regions:
        return _train_regions(args, data, seg)
    if data.get("mixed") and (args.cv or args.tune_threshold):
        raise UsageError("--cv and --tune-threshold take either case folders or slice files, not both")
    if data.get("volumes"):
        n_patients = len(set(data.patients) - {None})
        print(f"training on {sum(len(x) for x in data.images)} slices of {len(data.images)} volumes "
              f"({n_patients} cases)")
    else:
        n_patients = len(np.unique(data.patients))
        print(f"training on {len(data.images)} slices of {n_patients} patients")
    if args.tune_threshold:
        from .model_selection import tune_threshold

        folds = args.cv or 5
        if not args.cv and n_patients < folds:
            raise UsageError(f"--tune-threshold: its {folds} folds need at least {folds} patients, got {n_patients} "
                             f"(pass --cv N with 2 <= N <= {n_patients})")
        tuned = tune_threshold(seg, data.images, data.masks, data.patients, cv=folds, brain=data.brain,
                               verbose=1 if sys.stderr.isatty() else 0)
        print(f"threshold  mean per-patient Dice ({folds}-fold patient-wise cross-validation)")
        for t, d in zip(tuned["thresholds"], tuned["mean_patient_dice"]):
            print(f"{t:9.2f}  {d:.3f}{'  <- chosen' if t == tuned['threshold'] else ''}")
        seg.set_params(threshold=tuned["threshold"])
    if args.cv:
        result = cross_validate(seg, data.images, data.masks, data.patients, cv=args.cv, brain=data.brain,
                                verbose=1 if sys.stderr.isatty() else 0)
        print(result["report"].format())
        print(f"{args.cv}-fold patient-wise cross-validated mean Dice: {result['mean_patient_dice']:.3f}"
              + (" (with the threshold tuned on the same folds: optimistic)" if args.tune_threshold else ""))
    seg.fit(data.images, data.masks, data.brain)
    out = Path(args.model)
    save(seg, out)
    print(f"wrote {out}")
    return EXIT_OK


def _train_regions(args, data, template) -> int:
    """``fastseg train --regions``: the three-region cascade on case folders (label maps in brats2018)."""
    from .persistence import save
    from .regions import REGIONS, RegionSegmenter, cross_validate_regions

    seg = RegionSegmenter(template, convention="brats2018")
    print(f"training the whole tumour, tumour core and enhancing tumour on {sum(len(x) for x in data.images)} "
          f"slices of {len(data.images)} cases")
    if args.cv:
        n_patients = len(set(data.patients))
        if not 2 <= args.cv <= n_patients:
            raise UsageError(f"--cv must be from 2 to the number of cases ({n_patients}), got {args.cv}")
        result = cross_validate_regions(seg, data.images, data.labels, data.patients, cv=args.cv, brain=data.brain,
                                        spacing=data.spacing, verbose=1 if sys.stderr.isatty() else 0)
        short = {"whole tumour": "WT", "tumour core": "TC", "enhancing tumour": "ET"}
        print(f"{args.cv}-fold patient-wise cross-validation, per case (Dice, HD95 mm):")
        print(f"{'case':<28}" + "".join(f"{short[r] + ' Dice':>9}{short[r] + ' HD95':>9}" for r in REGIONS))
        rows = result["cases"] + [dict(case=stat, **{r: {m: result["summary"][r][m][stat] for m in ("dice", "hd95")}
                                                      for r in REGIONS}) for stat in ("mean", "median", "worst")]
        for row in rows:
            print(f"{str(row['case']):<28}" + "".join(f"{row[r]['dice']:9.3f}{row[r]['hd95']:9.2f}" for r in REGIONS))
    seg.fit(data.images, data.labels, data.brain)
    out = Path(args.model)
    save(seg, out)
    print(f"wrote {out}")
    return EXIT_OK


#: The model ``fastseg predict`` uses without ``--model`` (see ``docs/io.md``).
DEFAULT_MODEL = ("data", "default_model.npz")


def _default_model_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("fastseg").joinpath(*DEFAULT_MODEL)))


def _model_path(arg) -> Path:
    if arg is not None:
        return Path(arg)
    path = _default_model_path()
    if not path.is_file():
        raise UsageError("this installation has no default model (fastseg/data/default_model.npz): pass --model")
    return path


def _segment_case(model, case, *, probabilities: bool = False, clean_3d: bool = True,
                  labels: str = "brats2018") -> tuple:
    """A read case's (Z, H, W) segmentation and, if asked, tumour probabilities: the one per-case
    predict that single cases, folders, ``--jobs`` and ``--scheduler`` all call.

    The segmentation is bool masks of the whole tumour, or for a region model a uint8 label map in
    the convention ``labels``.  Slices
    without brain stay empty (probability 0); each region's 3-D components smaller than the
    model's ``min_relative_size`` times the largest are removed unless ``clean_3d`` is False.
    The probabilities are the whole tumour's.
    """
    from .regions import RegionModel

    has_brain = np.flatnonzero(case.brain.any(axis=(1, 2)))
    # the slices from the first to the last with brain: a view, not a copy of the images (a slice
    # without brain in between is predicted empty, as any pixel outside the brain)
    span = slice(has_brain[0], has_brain[-1] + 1) if has_brain.size else slice(0, 0)
    whole = model.whole if isinstance(model, RegionModel) else model
    if isinstance(model, RegionModel):
        from .io import label_map

        masks = np.zeros(case.brain.shape, dtype=np.uint8)
        if has_brain.size:
            found = model.predict_regions(case.images[span], case.brain[span], volume=clean_3d)
            masks[span] = label_map(found, labels)
    else:
        masks = np.zeros(case.brain.shape, dtype=bool)
        if has_brain.size:
            masks[span] = model.predict(case.images[span], case.brain[span])
        if clean_3d:
            from .components import clean_volume

            masks = clean_volume(masks, min_relative_size=model.postprocessing.min_relative_size)
    proba = None
    if probabilities:
        if not whole.has_proba:
            raise UsageError("--probabilities: this model's classifier gives no probabilities")
        proba = np.zeros(case.brain.shape, dtype=np.float32)
        if has_brain.size:
            proba[span] = whole.predict_proba(case.images[span], case.brain[span])
    return masks, proba


def _check_spacing(case, strict: bool) -> list:
    """Warnings (or, with ``strict``, a UsageError) for a voxel spacing other than the training one."""
    from .io import TRAINING_SPACING

    spacing = tuple(float(s) for s in case.spacing)
    if np.allclose(spacing, TRAINING_SPACING, rtol=0.01, atol=0):
        return []
    text = (f"case {case.name} has voxels of {' x '.join(f'{s:g}' for s in spacing)} mm, not the "
            f"{' x '.join(f'{s:g}' for s in TRAINING_SPACING)} mm the model was trained on")
    if strict:
        raise UsageError(text + " (--strict)")
    return [text + ": results may be worse; resample it to 1 mm (or pass --strict to refuse such cases)"]


def _predict_case(model, desc, out: Path, proba_out, options: dict) -> dict:
    """Read, segment and write one case; the summary line, warnings and Dice for the report."""
    import warnings

    from .io import _recycle_images, read_case, write_like

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        case = read_case(desc)
    notes = [str(w.message) for w in caught]
    notes += _check_spacing(case, options.get("strict", False))
    # a region model's label convention: --labels, else the case layout's
    convention = options.get("labels") or case.convention or "brats2018"
    masks, proba = _segment_case(model, case, probabilities=proba_out is not None,
                                 clean_3d=not options.get("no_3d", False), labels=convention)
    _recycle_images(case.images)  # the next case is read into this memory
    del case.images
    _write(lambda: write_like(case, masks, out), out)
    if proba_out is not None:
        _write(lambda: write_like(case, proba, proba_out, dtype=np.float32), proba_out)
    tumour = masks if masks.dtype == bool else masks > 0
    kind = "tumour voxels" if masks.dtype == bool else f"tumour voxels (labels {convention})"
    result = {"name": case.name, "ok": True, "warnings": notes, "out": str(out),
              "line": f"wrote {out}: {int(tumour.sum())} {kind} in {int(tumour.any(axis=(1, 2)).sum())} of "
                      f"{masks.shape[0]} slices ({time.perf_counter() - t0:.2f} s)"}
    if case.seg is not None:
        from .metrics import dice

        result["dice"] = dice(case.seg, tumour)
        if masks.dtype != bool and case.convention is not None:
            from .io import regions

            truth = regions(case.labels, case.convention)
            found = regions(masks, convention)
            result["region_dice"] = {name: dice(truth[name], found[name]) for name in truth}
    return result


def _write(write, path: Path):
    """Run ``write()``; an output that cannot be written is a usage error naming it."""
    try:
        return write()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


#: Models rebuilt in a worker process from the bytes of their file, by SHA-256.
_WORKER_MODELS: dict = {}


def _case_task(model_bytes: bytes, desc, out: str, proba_out, options: dict) -> dict:
    """One case in a worker process (``--jobs``) or a dask worker (``--scheduler``); never raises."""
    import hashlib

    digest = hashlib.sha256(model_bytes).hexdigest()
    model = _WORKER_MODELS.get(digest)
    if model is None:
        from .persistence import _model_from_bytes

        _WORKER_MODELS.clear()
        model = _WORKER_MODELS[digest] = _model_from_bytes(model_bytes)
    return _case_task_local(model, desc, out, proba_out, options)


def _run_processes(jobs: int, model, model_bytes: bytes, tasks: list):
    """Segment ``tasks`` in ``jobs`` processes: this one and ``jobs - 1`` workers; results as they finish.

    Each process takes the next case as soon as it is free (one lane per process, a thread here
    that either segments in this process or waits for its worker), so no case waits behind a busy
    process and no worker has to start before the first case is under way.
    """
    import multiprocessing
    import queue
    import threading
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    todo, results = deque(tasks), queue.Queue()

    def lane(pool):
        while True:
            try:
                task = todo.popleft()
            except IndexError:
                return
            if pool is None:
                results.put(_case_task_local(model, *task))
                continue
            try:
                results.put(pool.submit(_case_task, model_bytes, *task).result())
            except Exception as exc:  # a worker that died (killed, out of memory): its case failed
                results.put({"name": task[0].name, "ok": False, "usage": False,
                             "error": f"worker process failed: {type(exc).__name__}: {exc}"})

    with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init) as pool:
        lanes = [threading.Thread(target=lane, args=(None if i == 0 else pool,), daemon=True) for i in range(jobs)]
        for thread in lanes:
            thread.start()
        try:
            for _ in tasks:
                yield results.get()
        finally:  # stopped early (an interrupt): start no further case
            todo.clear()
        for thread in lanes:
            thread.join()


def _run_dask(address: str, model_bytes: bytes, tasks: list):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError('--scheduler needs dask.distributed: pip install "fastseg[dask]"') from None
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"--scheduler: cannot connect to {address!r} ({exc})") from None
    try:
        model = client.scatter(model_bytes, broadcast=True)
        futures = [client.submit(_case_task, model, *task, pure=False) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()


def _parse_channels(items) -> dict | None:
    if not items:
        return None
    mapping = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value:
            raise UsageError(f"--channels takes NAME=FILE items (t1=... t2=... t1c=... flair=..., optionally "
                             f"seg=...), got {item!r}")
        mapping[key.strip().lower()] = value.strip()
    from .io import _check_channels

    try:
        return _check_channels(mapping)
    except ValueError as exc:
        raise UsageError(f"--channels: {exc}") from None


def _nifti_out(path: Path) -> bool:
    return path.name.endswith((".nii", ".nii.gz"))


def cmd_predict(args) -> int:
    from .io import _recycle_images

    try:
        return _cmd_predict(args)
    finally:
        _recycle_images(None)  # keep no case's memory once the command is done


def _cmd_predict(args) -> int:
    src, out = Path(args.input), Path(args.out)
    if not src.exists():
        raise UsageError(f"--input: no file or folder at {str(src)!r}")
    if src.is_file() and src.suffix == ".npy":
        return _predict_npy(args, src, out)
    if not src.is_dir() and not _nifti_out(src):
        raise UsageError(f"--input must be a .npy stack, a case directory, a 4-D .nii.gz file or a folder of cases, "
                         f"got {str(src)!r}")
    from .io import _find

    if args.jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {args.jobs}")
    model_path = _model_path(args.model)
    model = _load_model(model_path)
    channels = _parse_channels(args.channels)
    try:
        cases, single = _find(src, channels)
    except FileNotFoundError as exc:
        raise UsageError(f"--input: {exc}") from None
    from .regions import RegionModel

    if args.labels and not isinstance(model, RegionModel):
        raise UsageError("--labels: this model segments the whole tumour only (train one with --regions)")
    options = {"strict": args.strict, "no_3d": args.no_3d, "labels": args.labels}
    proba = None if args.probabilities is None else Path(args.probabilities)
    if (single or len(cases) == 1) and _nifti_out(out):
        if proba is not None and not _nifti_out(proba):
            raise UsageError(f"--probabilities must be a .nii.gz file for one case, got {str(proba)!r}")
        result = _predict_case(model, cases[0], out, proba, options)
        for note in result["warnings"]:
            print(f"fastseg predict: warning: {note}", file=sys.stderr)
        print(result["line"])
        if proba is not None:
            print(f"wrote {proba}: tumour probabilities")
        if "region_dice" in result:
            print(f"Dice against {result['name']}'s seg: "
                  + ", ".join(f"{name} {d:.3f}" for name, d in result["region_dice"].items()))
        elif "dice" in result:
            print(f"whole-tumour Dice against {result['name']}'s seg: {result['dice']:.3f}")
        return EXIT_OK
    if _nifti_out(out):
        raise UsageError(f"--out must be a folder for a folder of cases ({len(cases)} found in {str(src)!r}), "
                         f"got {str(out)!r}")
    for folder, name in ((out, "--out"), (proba, "--probabilities")):
        if folder is None:
            continue
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{name} must be a folder for a folder of cases, got the file {str(folder)!r}")
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{name}: cannot create the folder {str(folder)!r} ({exc.strerror})") from None
    tasks, skipped = [], 0
    for desc in cases:
        target = out / f"{desc.name}.nii.gz"
        proba_target = None if proba is None else proba / f"{desc.name}.nii.gz"
        if not args.overwrite and target.exists() and (proba_target is None or proba_target.exists()):
            skipped += 1
            continue
        tasks.append((desc, str(target), None if proba_target is None else str(proba_target), options))
    print(f"{len(cases)} cases in {str(src)!r}: {len(tasks)} to segment"
          + (f", {skipped} already done (--overwrite to redo them)" if skipped else ""))
    t0 = time.perf_counter()
    if args.scheduler:
        results = _run_dask(args.scheduler, model_path.read_bytes(), tasks)
    elif args.jobs > 1 and len(tasks) > 1:
        results = _run_processes(min(args.jobs, len(tasks)), model, model_path.read_bytes(), tasks)
    else:
        results = (_case_task_local(model, *task) for task in tasks)
    failed = []
    for result in _progress(results, len(tasks), "segmenting cases"):
        if result["ok"]:
            for note in result["warnings"]:
                print(f"fastseg predict: warning: {note}", file=sys.stderr)
            if "region_dice" in result:
                dice = " (Dice " + ", ".join(f"{n} {d:.3f}" for n, d in result["region_dice"].items()) + ")"
            else:
                dice = f" (whole-tumour Dice {result['dice']:.3f})" if "dice" in result else ""
            print(result["line"] + dice)
        else:
            failed.append(result)
            print(f"fastseg predict: case {result['name']} failed: {result['error']}", file=sys.stderr)
    print(f"segmented {len(tasks) - len(failed)} of {len(tasks)} cases in {time.perf_counter() - t0:.1f} s"
          + (f"; {len(failed)} failed: {', '.join(sorted(r['name'] for r in failed))}" if failed else ""))
    if not failed:
        return EXIT_OK
    return EXIT_USAGE if all(r["usage"] for r in failed) else EXIT_FAILURE


def _case_task_local(model, desc, out: str, proba_out, options: dict) -> dict:
    """:func:`_case_task` in this process, with the model already loaded."""
    try:
        return _predict_case(model, desc, Path(out), None if proba_out is None else Path(proba_out), options)
    except (UsageError, FileNotFoundError, ValueError, TypeError, PermissionError) as exc:
        return {"name": desc.name, "ok": False, "usage": True, "error": str(exc)}
    except Exception as exc:
        return {"name": desc.name, "ok": False, "usage": False, "error": f"unexpected {type(exc).__name__}: {exc}"}


def _predict_npy(args, src: Path, out: Path) -> int:
    model = _load_model(_model_path(args.model))
    t0 = time.perf_counter()
    if out.suffix != ".npy":
        raise UsageError(f"--out must be a .npy file for a .npy input, got {str(out)!r}")
    try:  # the header: shape, dtype, where the data start (a map: nothing read yet)
        images = np.load(src, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy's header parser lets tokenizer and syntax errors through, too
        raise UsageError(f"--input {src.name} is not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(images, np.ndarray):
        raise UsageError(f"--input {src.name} is not a .npy array")
    single = images.ndim == 3
    if images.ndim not in (3, 4):
        raise UsageError(f"--input must hold (N, H, W, C) or (H, W, C) images, got shape {images.shape}")
    stack = images[None] if single else images
    n_slices = len(stack)
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(bool)), "fortran_order": False,
              "shape": stack.shape[1:3] if single else stack.shape[:3]}

    def write(tmp):  # masks are written batch by batch: neither the stack nor the masks are ever whole in memory
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            batches = _read_batches(src, images, stack.shape, _PREDICT_BATCH)
            for batch in _progress(batches, -(-n_slices // _PREDICT_BATCH), "segmenting"):
                fh.write(model.predict(batch).tobytes())

    _atomic_write(out, write)
    print(f"wrote {out}: {n_slices} slices ({time.perf_counter() - t0:.2f} s)")
    return EXIT_OK


#: Slices read, segmented and written together by ``fastseg predict`` on a .npy stack.
_PREDICT_BATCH = 64


def _read_batches(path: Path, mapped: np.ndarray, shape: tuple, batch: int):
    """Yield a .npy stack's slices ``batch`` at a time, as ordinary arrays, in a buffer reused between batches.

    The data are read with plain reads from the file, not through the memory map: pages
    read through a map count in the process's resident memory until the kernel needs
    them back, so the map would grow to the whole stack (7.8 GB peak for 8,000 slices);
    read into one buffer, the stack passes through the page cache only.  ``mapped``
    (``np.load(..., mmap_mode="r")``) gives the layout; a Fortran-ordered file, whose
    slices are not contiguous on disk, is read through it instead.
    """
    n_slices = shape[0]
    if mapped.ndim > 1 and mapped.flags.f_contiguous and not mapped.flags.c_contiguous:
        stack = mapped.reshape(shape)
        for start in range(0, n_slices, batch):
            yield np.array(stack[start:start + batch])
        return
    buffer = np.empty((min(batch, n_slices),) + tuple(shape[1:]), dtype=mapped.dtype)
    with open(path, "rb") as fh:
        fh.seek(mapped.offset)
        for start in range(0, n_slices, batch):
            view = buffer[:min(batch, n_slices - start)]
            if fh.readinto(view) != view.nbytes:
                raise UsageError(f"--input {str(path)!r} is shorter than its header says (truncated?)")
            yield view


def _truth_sources(truth: Path, names: list) -> tuple:
    """``{case: Source}`` of the ground truth for each predicted case: ``TRUTH/<case>.nii.gz`` label files,
    ``TRUTH/<case>/`` case directories holding their seg, or any folder of cases fastseg reads; and
    ``{case: convention}`` (None if unknown) of those found in case directories (not label files)."""
    from .io import Source, _find, _nifti_files, _stem

    found, conventions = {}, {}
    files = {_stem(f): f for f in _nifti_files(truth)}
    for name in names:
        if name in files:
            found[name] = Source(files[name])
    rest = [n for n in names if n not in found]
    if rest:
        try:
            cases, _ = _find(truth, None)
        except (FileNotFoundError, ValueError):
            cases = []
        by_name = {c.name: c for c in cases}
        for name in rest:
            if name in by_name and by_name[name].label is not None:
                found[name] = by_name[name].label
                conventions[name] = by_name[name].convention
    return found, conventions


#: The columns of ``fastseg evaluate --regions``: each region's prefix.
_REGION_COLUMNS = {"whole tumour": "wt", "tumour core": "tc", "enhancing tumour": "et"}
_STATS = ("mean", "median", "std", "worst")


def _regions_convention(labels, truth_dir: Path, truths: dict, conventions: dict) -> tuple:
    """The label convention of ``--regions`` and where it comes from: ``--labels``; else that of the
    truth's case directories, which must share one; else, for label files, that of a dataset.json
    beside them (or in their parent) naming the labels, else brats2018."""
    from .io import _dataset_json, _label_convention

    if labels is not None:
        return labels, "--labels"
    if not conventions:  # label files only (or no truth at all)
        try:
            named = _label_convention(_dataset_json(truth_dir), None)
        except ValueError as exc:
            raise UsageError(f"--truth: {exc}") from None
        if named is not None:
            return named, "the labels of dataset.json"
        return "brats2018", "the default for label files"
    kinds = [conventions.get(name, "label file") or "unknown" for name in truths]
    if len(set(kinds)) == 1 and kinds[0] not in ("unknown", "label file"):
        return kinds[0], "the truth cases' layout"
    counts = ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))
    raise UsageError(f"--regions: the truth cases do not share one known label convention ({counts}); "
                     "pass --labels brats2018, brats2023 or msd")


def _region_row(truth, pred, convention: str) -> dict:
    """A case's ``--regions`` columns: ``wt_dice``, ..., ``et_volume_difference_ml``."""
    from .metrics import _check_label_map, _region_metrics

    # region_metrics' checks, naming the files' roles in the messages
    t = _check_label_map(truth.labels, "the truth", convention)
    p = _check_label_map(pred.labels, "the prediction", convention, shape=t.shape)
    scores = _region_metrics(t, p, convention, truth.spacing)
    return {f"{_REGION_COLUMNS[region]}_{m}": v for region, row in scores.items() for m, v in row.items()}


def _write_table(path: Path, rows: list, columns: list) -> None:
    import csv

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    _atomic_write(path, write)


def _evaluate_folders(args, pred_dir: Path, truth_dir: Path) -> int:
    from .io import _nifti_files, _stem, read_label_volume
    from .metrics import CASE_METRICS, case_metrics, summarize

    preds = {_stem(f): f for f in _nifti_files(pred_dir)}
    if not preds:
        raise UsageError(f"--pred {str(pred_dir)!r} holds no <case>.nii.gz predictions")
    truths, conventions = _truth_sources(truth_dir, sorted(preds))
    convention = origin = None
    if args.regions:
        convention, origin = _regions_convention(args.labels, truth_dir, truths, conventions)
    rows, failed = [], []
    for name in _progress(sorted(preds), len(preds), "scoring cases"):
        if name not in truths:
            failed.append(name)
            print(f"fastseg evaluate: case {name}: no ground truth in {str(truth_dir)!r}", file=sys.stderr)
            continue
        try:
            truth = read_label_volume(truths[name])
            pred = read_label_volume(preds[name])
            if pred.labels.shape != truth.labels.shape:
                raise ValueError(f"the prediction has shape {pred.shape}, the truth {truth.shape}")
            if not np.allclose(pred.canonical_affine, truth.canonical_affine, rtol=0, atol=1e-3):
                raise ValueError("the prediction is not on the truth's voxel grid (their affines differ)")
            if convention is None:
                row = {"case": name, **case_metrics(truth.labels > 0, pred.labels > 0, truth.spacing)}
            else:
                row = {"case": name, **_region_row(truth, pred, convention)}
        except (FileNotFoundError, ValueError) as exc:
            failed.append(name)
            print(f"fastseg evaluate: case {name} failed: {exc}", file=sys.stderr)
            continue
        rows.append(row)
    metrics = list(CASE_METRICS)
    csv_path = Path(args.csv) if args.csv else pred_dir / "metrics.csv"
    json_path = Path(args.json) if args.json else pred_dir / "metrics.json"
    if convention is not None:
        _report_regions(rows, failed, convention, origin, csv_path, json_path)
        return EXIT_OK if not failed else EXIT_USAGE
    summary = summarize(rows, metrics) if rows else {}
    _write_table(csv_path, rows, ["case"] + metrics)
    _save_json(json_path, {"region": "whole tumour", "cases": rows, "summary": summary, "failed": failed,
                           "definitions": "fastseg.metrics.case_metrics"})
    print(f"{len(rows)} cases scored (whole tumour){'; ' + str(len(failed)) + ' failed' if failed else ''}")
    if rows:
        print(f"{'':<8}" + "".join(f"{m:>22}" for m in metrics))
        for stat in ("mean", "median", "std", "worst"):
            print(f"{stat:<8}" + "".join(f"{summary[m][stat]:>22.4f}" for m in metrics))
    print(f"wrote {csv_path} and {json_path}")
    return EXIT_OK if not failed else EXIT_USAGE


def _report_regions(rows: list, failed: list, convention: str, origin: str, csv_path: Path, json_path: Path) -> None:
    """Write and print the ``--regions`` table: one row per case, a summary per region."""
    from .io import LABEL_CONVENTIONS
    from .metrics import CASE_METRICS, summarize

    metrics = list(CASE_METRICS)
    summary = {}
    for region, prefix in _REGION_COLUMNS.items():
        region_rows = [{m: row[f"{prefix}_{m}"] for m in metrics} for row in rows]
        summary[region] = summarize(region_rows, metrics) if rows else {}
    _write_table(csv_path, rows, ["case"] + [f"{p}_{m}" for p in _REGION_COLUMNS.values() for m in metrics])
    _save_json(json_path, {"regions": list(_REGION_COLUMNS), "convention": convention,
                           "labels": {r: list(v) for r, v in LABEL_CONVENTIONS[convention].items()},
                           "cases": rows, "summary": summary, "failed": failed,
                           "definitions": "fastseg.metrics.region_metrics"})
    print(f"{len(rows)} cases scored ({', '.join(_REGION_COLUMNS)}; {convention} labels: {origin})"
          f"{'; ' + str(len(failed)) + ' failed' if failed else ''}")
    if rows:
        headings = ("dice", "hd95 mm", "precision", "recall", "vol diff mL")
        print(f"{'':<26}" + "".join(f"{h:>12}" for h in headings))
        for region in _REGION_COLUMNS:
            for i, stat in enumerate(_STATS):
                print(f"{region if i == 0 else '':<18}{stat:<8}"
                      + "".join(f"{summary[region][m][stat]:>12.4f}" for m in metrics))
    print(f"wrote {csv_path} and {json_path}")


def cmd_evaluate(args) -> int:
    if args.labels is not None and not args.regions:
        raise UsageError("--labels sets the label convention of --regions: pass --regions too")
    pred_path, truth_path = Path(args.pred), Path(args.truth)
    for path, name in ((pred_path, "--pred"), (truth_path, "--truth")):
        if not path.exists():
            raise UsageError(f"{name}: no file at {str(path)!r}")
    if pred_path.is_dir() or truth_path.is_dir():
        if not (pred_path.is_dir() and truth_path.is_dir()):
            raise UsageError("--pred and --truth must both be folders, or both files")
        return _evaluate_folders(args, pred_path, truth_path)
    if args.regions:
        raise UsageError("--regions is for folders of NIfTI cases (--pred FOLDER --truth FOLDER); "
                         ".npy masks and single volumes are scored as whole tumour")
    if args.csv:
        raise UsageError("--csv is for folders of cases")
    from .metrics import segmentation_report


    pred = _load_mask_file(Path(args.pred), "--pred")
    truth = _load_mask_file(Path(args.truth), "--truth")
    if pred.shape != truth.shape:
        raise UsageError(f"--pred has shape {pred.shape} but --truth has shape {truth.shape}")
    groups = None
    if args.groups:
        gpath = Path(args.groups)
        if not gpath.exists():
            raise UsageError(f"--groups: no file at {str(gpath)!r}")
        groups = gpath.read_text().split()
    report = segmentation_report(truth, pred, groups)
    print(report.format())
    if args.json:
        _save_json(Path(args.json), report.to_dict())
        print(f"wrote {args.json}")
    return EXIT_OK


def cmd_bench(args) -> int:
    """Throughput of PixelSegmenter.predict beside the same pipeline in numpy/scikit-learn/scipy."""
    from ._baselines import K5_LINEAR, numpy_predict
    from .datasets import load_sample
    from .segmenter import PixelSegmenter

    sample = load_sample()
    n = 32 if args.quick else 256
    reps = -(-n // len(sample.images))
    images = np.tile(sample.images, (reps, 1, 1, 1))[:n]
    brain = np.tile(sample.brain, (reps, 1, 1))[:n]
    n_base = 8 if args.quick else 32
    print(f"fastseg {__version__} bench: {n} real 240x240x4 slices ({os.cpu_count()} cores)")
    print(f"{'pipeline':<44} {'slices/s':>10} {'ms/slice':>9}")

    def timed(fn, count):
        fn()  # warm up
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        return count / dt, dt / count * 1e3

    rows = []
    k5 = PixelSegmenter(random_state=0, **K5_LINEAR)
    k5.fit(sample.images, sample.masks, sample.brain)
    rows.append(("fastseg k=5 linear + post, 1 thread", timed(lambda: k5.predict(images, brain), n)))
    rows.append(("fastseg k=5 linear + post, 2 threads",
                 timed(lambda: k5.set_params(n_jobs=2).predict(images, brain), n)))
    rows.append(("numpy+sklearn+scipy k=5 linear + post", timed(lambda: numpy_predict(k5, images[:n_base], brain[:n_base]), n_base)))
    default = PixelSegmenter(random_state=0).fit(sample.images, sample.masks, sample.brain)
    rows.append(("fastseg default (MLP, k=3 + context), 1 thread", timed(lambda: default.predict(images, brain), n)))
    for name, (rate, ms) in rows:
        print(f"{name:<44} {rate:>10.0f} {ms:>9.2f}")
    ratio = rows[0][1][0] / rows[2][1][0]
    print(f"\nk=5 linear pipeline: fastseg is {ratio:.1f}x faster than numpy + scikit-learn + scipy (1 thread)")
    return EXIT_OK


# ----------------------------------------------------------------------------- entry point

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastseg", description=(
        "Classical per-pixel brain-tumour segmentation of multichannel MRI slices."))
    parser.add_argument("--version", action="version", version=f"fastseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="train on the shipped sample, segment held-out patients, report and draw",
                       description=cmd_demo.__doc__)
    p.add_argument("--out", default="fastseg-demo", help="folder for report.json and demo.png (default: %(default)s)")
    p.add_argument("--n-jobs", type=int, default=None, help="threads for prediction (default: 1)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a segmenter and save it", description=(
        "Train a PixelSegmenter on slices and save it as a model file (.npz)."))
    p.add_argument("--data", required=True, action="append",
                   help="brats2d-style folder (*_x.npy, *_y.npy, ...), an .npz, or a folder of BraTS case "
                        "directories; repeat it to train on several (e.g. a brats2d folder and its "
                        "multislice_train.npz)")
    p.add_argument("--model", required=True, help="model file to write (.npz)")
    p.add_argument("--split", default="train", help="file prefix to read in a brats2d-style folder (default: %(default)s)")
    p.add_argument("--k", type=int, default=3, help="window size (default: %(default)s)")
    p.add_argument("--classifier", default="mlp", choices=["mlp", "linear-svm", "logistic"],
                   help="(default: %(default)s)")
    p.add_argument("--max-pixels", type=int, default=300, help="training pixels per slice (default: %(default)s)")
    p.add_argument("--cv", type=int, default=0, help="also report N-fold patient-wise cross-validated Dice")
    p.add_argument("--tune-threshold", action="store_true",
                   help="choose the decision threshold by patient-wise cross-validation on the training data "
                        "(--cv folds, 5 if not given): the best mean per-patient Dice, each patient's slices "
                        "pooled. Train on slices like those you will segment (e.g. multislice_train.npz for "
                        "whole volumes)")
    p.add_argument("--regions", action="store_true",
                   help="train the three BraTS regions (whole tumour, tumour core, enhancing tumour) as a "
                        "cascade, on folders of cases; --cv then reports Dice and HD95 of each region per case")
    p.add_argument("--labels", choices=LABEL_CONVENTION_NAMES,
                   help="with --regions: the label convention of the cases' seg files (default: the one "
                        "their layout implies)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--n-jobs", type=int, default=None)
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="segment a .npy stack, a case, or a folder of cases", description=(
        "Segment a .npy stack of (N, H, W, C) slices (read in batches, memory-mapped) into a .npy of masks; "
        "a case (a BraTS 2018-2021 or 2023+ case directory, an MSD 4-D file, nnU-Net channel files) into a "
        "NIfTI segmentation in the input's orientation, affine and header; or a folder of cases into a folder "
        "of <case>.nii.gz segmentations."))
    p.add_argument("--model", help="model file written by 'fastseg train' (default: the model shipped with fastseg)")
    p.add_argument("--input", required=True, help=".npy stack, case directory, 4-D .nii.gz file, or folder of cases")
    p.add_argument("--out", required=True,
                   help=".npy (for a stack), .nii.gz (for a case), or a folder (for a folder of cases)")
    p.add_argument("--probabilities", metavar="OUT",
                   help="also write the tumour probability map (float32 NIfTI; a folder for a folder of cases)")
    p.add_argument("--channels", nargs="+", metavar="NAME=FILE",
                   help="the channels of a layout fastseg does not know: t1=... t2=... t1c=... flair=... "
                        "(optionally seg=...), each a file name, the end of one (e.g. _T1w), or a path; or "
                        "channel indices (t1=1 ...) for 4-D or nnU-Net files")
    p.add_argument("--strict", action="store_true",
                   help="refuse cases whose voxel spacing is not the training spacing (by default: a warning)")
    p.add_argument("--overwrite", action="store_true", help="for a folder: segment cases already in --out again")
    p.add_argument("--jobs", type=int, default=1,
                   help="for a folder: processes segmenting cases at once, this one and N - 1 workers "
                        "(default: %(default)s)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="for a folder: segment on this dask.distributed scheduler's workers (which must see "
                        "the same files)")
    p.add_argument("--labels", choices=LABEL_CONVENTION_NAMES,
                   help="for a region model: the label convention to write (default: that of the input's "
                        "layout, brats2018 when it has none)")
    p.add_argument("--no-3d", action="store_true",
                   help="for a case: keep every 3-D component (by default those smaller than the model's "
                        "min_relative_size times the largest are removed)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="Dice, HD95, precision, recall per case; or per slice and patient",
                       description=(
        "Compare predicted and true masks: two .npy files or NIfTI volumes (> 0 is tumour), per slice and "
        "patient; or two folders: --pred FOLDER of <case>.nii.gz against --truth FOLDER of case directories "
        "holding their seg (any layout) or of <case>.nii.gz label files, per case: Dice, HD95 (mm), "
        "precision, recall and volume difference (mL) of the whole tumour (with --regions: of the whole "
        "tumour, tumour core and enhancing tumour), written as CSV and JSON, with their mean, median, std "
        "and worst value."))
    p.add_argument("--pred", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--groups", help="text file with one patient id per slice")
    p.add_argument("--json", help="also write the report as JSON (folders: default PRED/metrics.json)")
    p.add_argument("--csv", help="folders: the per-case table (default: PRED/metrics.csv)")
    p.add_argument("--regions", action="store_true",
                   help="folders: score the three BraTS regions of label maps, whole tumour (wt_* columns), "
                        "tumour core (tc_*) and enhancing tumour (et_*); a region empty in both truth and "
                        "prediction gets Dice 1 and HD95 0, in one only Dice 0 and HD95 the volume's diagonal")
    p.add_argument("--labels", choices=LABEL_CONVENTION_NAMES,
                   help="with --regions: the label convention of the predictions and the truth, brats2018 "
                        "(enhancing 4), brats2023 (enhancing 3) or msd (1 oedema, 2 non-enhancing, 3 "
                        "enhancing). Default: that of the truth's case directories (brats2018 for *_seg, "
                        "brats2023 for *-seg files; they must agree); for a folder of <case>.nii.gz label "
                        "files, that of a dataset.json beside it or in its parent naming the labels, else "
                        "brats2018. A label outside the convention fails its case")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="throughput table: fastseg vs numpy/scikit-learn/scipy",
                       description=cmd_bench.__doc__)
    p.add_argument("--quick", action="store_true", help="fewer slices")
    p.set_defaults(func=cmd_bench)
    return parser


def _madvise_hugepage(enabled: bool) -> bool | None:
    """Set whether numpy advises the kernel to back its large arrays with 2 MB pages; the previous
    setting, or None where this numpy has no such switch.

    The command line turns the advice off while it runs.  On virtual machines whose host backs a
    guest's memory lazily (common in the cloud), the first write to a fresh 2 MB page costs tens of
    milliseconds: reading and segmenting a first BraTS case took 3.2 s with the advice and 0.85 s
    without it, with no difference on the cases after it, whose memory is already backed.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # numpy < 2: the same switch under its former name
        try:
            from numpy.core.multiarray import _set_madvise_hugepage
        except ImportError:
            return None
    return bool(_set_madvise_hugepage(enabled))


def _worker_init() -> None:
    """Set up a ``--jobs`` worker process as the command itself runs."""
    _madvise_hugepage(False)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = _madvise_hugepage(False)
    try:
        return _run(args)
    finally:
        if previous is not None:
            _madvise_hugepage(previous)


def _run(args) -> int:
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"fastseg {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, ValueError, TypeError, ImportError) as exc:
        print(f"fastseg {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"fastseg {args.command}: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # an unexpected failure: say so, with the type, for a bug report
        print(f"fastseg {args.command}: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
