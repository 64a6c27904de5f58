"""Peak memory of ``fastseg predict`` on a .npy stack far larger than what it may hold in memory.

Builds an 8,000-slice float32 stack on disk (8000 x 240 x 240 x 4 = 7.4 GB) by tiling the 20 real BraTS
slices of ``../shared/data/brats2d``, written piece by piece (never whole in memory), trains and saves a
model, runs ``fastseg predict`` on the stack in a child process, and reports the child's peak resident
memory (``getrusage(RUSAGE_CHILDREN).ru_maxrss``, measured by a small
intermediate process) beside that of the same command on a one-slice stack
(Python, numpy, scikit-learn and the model: the start-up cost).  It checks the masks against
``PixelSegmenter.predict`` on the real slices, then deletes the stack and the masks.

Needs about 8 GB of free disk in ``--workdir`` (default: the system's temporary folder) and a few
minutes; it is not part of the test or benchmark suites.  Run from the repository root:

    python benchmarks/out_of_core.py                    # 8,000 slices, the default model
    python benchmarks/out_of_core.py --model k5-linear  # the benchmarks' k=5 linear model
    python benchmarks/out_of_core.py --slices 500       # a quick check
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BRATS2D = REPO.parent / "shared" / "data" / "brats2d"
MODELS = {
    "default": {},
    "k5-linear": {"k": 5, "mean_sizes": (), "asymmetry": False},
}


def write_tiled_stack(path: Path, real: np.ndarray, n_slices: int, piece: int = 100) -> None:
    """A C-order .npy of ``n_slices`` slices, slice i = ``real[i % len(real)]``, written ``piece`` slices at a time."""
    n_real = len(real)
    reps = -(-piece // n_real) + 1
    tiled = np.tile(real, (reps, 1, 1, 1))  # any run of `piece` consecutive slices is a view of this
    header = {"descr": np.lib.format.dtype_to_descr(real.dtype), "fortran_order": False,
              "shape": (n_slices,) + real.shape[1:]}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, n_slices, piece):
            stop = min(start + piece, n_slices)
            offset = start % n_real
            fh.write(np.ascontiguousarray(tiled[offset:offset + stop - start]).tobytes())


#: Runs a command and prints the peak RSS of its process (KiB on Linux).  A fresh, small Python does the
#: measuring: a child spawned from this (large) process would report this process's size as its own peak,
#: as Linux carries the peak of the address space it replaces at exec into the child's ``ru_maxrss``.
_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def run_predict(model: Path, stack: Path, out: Path) -> tuple[float, int]:
    """Run ``fastseg predict`` in a child process: (seconds, its peak RSS in KiB)."""
    command = [sys.executable, "-m", "fastseg.cli", "predict", "--model", str(model), "--input", str(stack),
               "--out", str(out)]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _MEASURE, *command], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(result.stdout.split()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=8000, help="slices in the stack (default: %(default)s)")
    parser.add_argument("--model", choices=sorted(MODELS), default="default",
                        help="segmenter configuration (default: %(default)s)")
    parser.add_argument("--workdir", default=None, help="folder for the stack (default: the temporary folder)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    import fastseg
    from fastseg import PixelSegmenter, save

    if not (BRATS2D / "train_x.npy").exists():
        print(f"BraTS slices not found at {BRATS2D}", file=sys.stderr)
        return 2
    x = np.concatenate([np.load(BRATS2D / "train_x.npy"), np.load(BRATS2D / "test_x.npy")])
    train_x, train_y = np.load(BRATS2D / "train_x.npy"), np.load(BRATS2D / "train_y.npy")
    slice_bytes = x[0].nbytes
    need = args.slices * (slice_bytes + x[0].shape[0] * x[0].shape[1]) + (1 << 30)
    workdir = Path(tempfile.mkdtemp(prefix="fastseg-out-of-core-", dir=args.workdir))
    try:
        free = shutil.disk_usage(workdir).free
        if free < need:
            print(f"need {need / 1e9:.1f} GB free in {workdir.parent}, have {free / 1e9:.1f} GB", file=sys.stderr)
            return 2
        seg = PixelSegmenter(random_state=0, **MODELS[args.model]).fit(train_x, train_y)
        model = save(seg, workdir / "model.npz")
        stack, out = workdir / "stack.npy", workdir / "masks.npy"

        np.save(workdir / "one.npy", x[:1])
        _, startup_kib = run_predict(model, workdir / "one.npy", workdir / "one-masks.npy")

        t = time.perf_counter()
        write_tiled_stack(stack, x, args.slices)
        write_seconds = time.perf_counter() - t
        seconds, peak_kib = run_predict(model, stack, out)

        masks = np.load(out, mmap_mode="r")
        assert masks.shape == (args.slices,) + x.shape[1:3] and masks.dtype == bool
        expected = seg.predict(x)  # the command derives the brain masks, as here
        for start in (0, args.slices - len(x)):  # the first and the last tile of the stack
            idx = np.arange(start, start + len(x))
            assert np.array_equal(masks[idx], expected[idx % len(x)]), f"masks differ in slices {start}..."
        del masks
        output_mib = args.slices * x.shape[1] * x.shape[2] / 2**20
        figures = {
            "fastseg_version": fastseg.__version__,
            "model": args.model,
            "slices": args.slices,
            "stack_gib": args.slices * slice_bytes / 2**30,
            "write_seconds": write_seconds,
            "predict_seconds": seconds,
            "slices_per_second": args.slices / seconds,
            "peak_rss_mib": peak_kib / 1024,
            "startup_rss_mib": startup_kib / 1024,
            "output_mib": output_mib,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"fastseg predict on {args.slices} slices ({figures['stack_gib']:.2f} GiB of float32 on disk, "
          f"model {args.model}):")
    print(f"  {seconds:.1f} s ({figures['slices_per_second']:.0f} slices/s); writing the stack took {write_seconds:.1f} s")
    bar = output_mib + 1024
    print(f"  peak RSS {figures['peak_rss_mib']:.0f} MiB; start-up (the same command on one slice): "
          f"{figures['startup_rss_mib']:.0f} MiB; the masks: {output_mib:.0f} MiB")
    print(f"  bar: peak RSS under the masks + 1 GiB = {bar:.0f} MiB: "
          f"{'met' if figures['peak_rss_mib'] < bar else 'NOT MET'}")
    print("  masks equal PixelSegmenter.predict on the first and last tiles")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
