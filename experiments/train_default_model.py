"""Train the model fastseg ships (``fastseg/data/default_model.npz``) and write its provenance.

The single source of truth for the shipped model: whenever the default recipe changes, run

    python experiments/train_default_model.py --data ../shared/data/brats_volumes

from the repository root.  It trains with ``fastseg train`` on every case of the folder (any layout
``fastseg.io`` reads), using :data:`RECIPE` (the options given to ``fastseg train`` after ``--data``
and ``--model``), and writes

- ``fastseg/data/default_model.npz``: the model file;
- ``fastseg/data/default_model.json``: its provenance: the training command, the cases, the fastseg,
  numpy and scikit-learn versions, and the model file's SHA-256 (a test checks it matches the file).

``fastseg predict`` uses the model without ``--model``; ``docs/io.md`` shows the provenance.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shlex
import sys
import tempfile
from pathlib import Path

#: Options of ``fastseg train`` for the shipped model (empty: the command's defaults).
RECIPE: list = []

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of training cases (with their ground truth)")
    parser.add_argument("--out", default=str(ROOT / "fastseg" / "data" / "default_model.npz"),
                        help="model file to write (default: the package's); the provenance goes beside it")
    args = parser.parse_args(argv)

    import numpy
    import sklearn

    import fastseg
    from fastseg.cli import main as fastseg_main
    from fastseg.io import find_cases

    data = Path(args.data)
    cases = find_cases(data)
    missing = [c.name for c in cases if c.label is None]
    if missing:
        parser.error(f"cases without ground truth: {missing}")
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.npz"
        command = ["train", "--data", str(data), "--model", str(model), *RECIPE]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = fastseg_main(command)
        sys.stdout.write(printed.getvalue())
        if code != 0:
            return code
        payload = model.read_bytes()
    out.write_bytes(payload)
    provenance = {
        "model_file": out.name,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "training_command": shlex.join(["fastseg", "train", "--data", data.name, "--model", out.name, *RECIPE]),
        "script": "python experiments/train_default_model.py --data " + data.name,
        "recipe": RECIPE,
        "cases": [c.name for c in cases],
        "n_cases": len(cases),
        "training_output": [line for line in printed.getvalue().strip().splitlines() if not line.startswith("wrote ")],
        "fastseg_version": fastseg.__version__,
        "numpy_version": numpy.__version__,
        "scikit_learn_version": sklearn.__version__,
    }
    out.with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
