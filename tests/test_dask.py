"""fastseg.dask: blockwise prediction on dask arrays, on a real 2-process dask.distributed LocalCluster.

The cluster tests start one LocalCluster for the module (two single-threaded worker processes on
loopback) and compare every result with the in-process ``PixelSegmenter`` exactly.  They are skipped
when dask / distributed are not installed (``pip install "fastseg[dask]"``; CI installs them).
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from fastseg import PixelSegmenter
from fastseg._baselines import K5_LINEAR


def _run_python(code: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter that imports the fastseg these tests import.

    The working directory is a temporary folder: from the repository root, ``python -c`` would
    import the source tree (no compiled kernels) instead of the installed package."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=tempfile.gettempdir(),
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})


def test_import_fastseg_does_not_import_dask():
    result = _run_python("""
        import sys, fastseg
        assert not [m for m in sys.modules if m == "dask" or m.startswith(("dask.", "distributed"))], \\
            sorted(m for m in sys.modules if "dask" in m or "distributed" in m)
    """)
    assert result.returncode == 0, result.stderr


def test_import_without_dask_says_how_to_install():
    result = _run_python("""
        import sys
        sys.modules["dask"] = None          # as if dask were not installed
        try:
            import fastseg.dask
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported fastseg.dask without dask")
    """)
    assert result.returncode == 0, result.stderr
    assert 'pip install "fastseg[dask]"' in result.stdout


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def da():
    return pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def fdask(da):
    import fastseg.dask

    return fastseg.dask


@pytest.fixture(scope="module")
def client(da):
    """A real cluster: two worker processes with one thread each, on loopback, no dashboard."""
    distributed = pytest.importorskip("distributed")
    environ = os.environ.copy()  # the nanny sets its workers' variables (OMP_NUM_THREADS=1, ...) in this process too
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture(scope="module")
def slices(brats_train, brats_test):
    """8 real slices (5 training, 3 test patients) and their brain masks: 7.4 MB, a small graph."""
    x = np.concatenate([brats_train["x"][:5], brats_test["x"]])
    brain = np.concatenate([brats_train["brain"][:5], brats_test["brain"]])
    return x, brain


@pytest.fixture(scope="module")
def linear_k5(brats_train):
    """The benchmarks' configuration: k=5 linear SVM with post-processing."""
    t = brats_train
    return PixelSegmenter(random_state=0, **K5_LINEAR).fit(t["x"], t["y"], t["brain"])


@pytest.fixture(scope="module")
def logistic_default(brats_train):
    """The default features (context channels) with a probabilistic classifier."""
    t = brats_train
    return PixelSegmenter(classifier="logistic", max_pixels=500, random_state=0).fit(t["x"], t["y"], t["brain"])


# ----------------------------------------------------------------------------- on the cluster

CHUNKINGS = {
    "along-N": (2, -1, -1, -1),
    "uneven-N": ((3, 5), -1, -1, -1),
    "along-H-W-C": ((3, 5), (100, 140), (60, 60, 120), (1, 3)),
}


@pytest.mark.parametrize("brain_kind", ["none", "numpy", "dask-other-chunks"])
@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_predict_on_cluster_equals_in_process(client, da, fdask, slices, linear_k5, chunking, brain_kind):
    x, brain = slices
    images = da.from_array(x, chunks=CHUNKINGS[chunking])
    b = {"none": None, "numpy": brain, "dask-other-chunks": da.from_array(brain, chunks=(4, 120, 240))}[brain_kind]
    masks = fdask.predict(linear_k5, images, b)
    assert masks.shape == (8, 240, 240) and masks.dtype == bool
    assert masks.chunks == (images.chunks[0], (240,), (240,))  # whole slices, N chunks kept
    result = client.compute(masks).result()
    expected = linear_k5.predict(x, None if brain_kind == "none" else brain)
    assert result.dtype == bool and expected.any()
    np.testing.assert_array_equal(result, expected)


def test_predict_proba_and_decision_function_on_cluster_equal_in_process(client, da, fdask, slices,
                                                                           logistic_default, linear_k5):
    x, brain = slices
    images = da.from_array(x, chunks=((1, 3, 4), 120, -1, -1))
    proba = client.compute(fdask.predict_proba(logistic_default, images, brain)).result()
    assert proba.dtype == np.float32
    np.testing.assert_array_equal(proba, logistic_default.predict_proba(x, brain))
    masks = client.compute(fdask.predict(logistic_default, images)).result()
    np.testing.assert_array_equal(masks, logistic_default.predict(x))
    scores = client.compute(fdask.decision_function(linear_k5, images, brain)).result()
    np.testing.assert_array_equal(scores, linear_k5.decision_function(x, brain))


def test_workers_rebuild_the_model_from_its_file_once(client, da, fdask, slices, linear_k5):
    """The graph holds the model file once (bytes, no pickled estimator); each worker caches the rebuilt model."""
    from fastseg.persistence import loads

    x, brain = slices
    masks = fdask.predict(linear_k5, da.from_array(x, chunks=(1, -1, -1, -1)), brain)
    graph = dict(masks.__dask_graph__())
    models = [key for key in graph if str(key).startswith("fastseg-model-")]
    assert len(models) == 1
    model_bytes = masks.__dask_graph__()[models[0]]
    model_bytes = getattr(model_bytes, "value", model_bytes)  # a literal node in the graph
    # 100 weights and the JSON spec (which names the 100 feature columns): about 12 kB, not a pickled estimator
    assert isinstance(model_bytes, bytes) and model_bytes[:2] == b"PK" and len(model_bytes) < 20_000
    shipped = loads(model_bytes)  # the caller's segmenter as it is; the tasks' n_jobs travel beside it
    assert shipped.get_params() == linear_k5.get_params()
    np.testing.assert_array_equal(shipped.model_.network.weights, linear_k5.model_.network.weights)
    assert b"sklearn" not in pickle.dumps({k: v for k, v in graph.items() if str(k).startswith("fastseg-")})

    client.compute(masks).result()
    digest = __import__("hashlib").sha256(model_bytes).hexdigest()
    cached = client.run(lambda: {d: type(s).__name__ for d, s in __import__("fastseg.dask").dask._CACHE.items()})
    assert len(cached) == 2  # two worker processes
    assert all(c.get(digest) == "PixelModel" for c in cached.values()), cached  # no scikit-learn estimator


def test_read_npy_reads_on_the_workers(client, fdask, slices, linear_k5, tmp_path):
    """A .npy stack read chunk by chunk by the tasks: the graph carries no data, results are exact."""
    x, brain = slices
    np.save(tmp_path / "stack.npy", x)
    images = fdask.read_npy(tmp_path / "stack.npy", chunks=3)
    assert images.shape == x.shape and images.dtype == x.dtype and images.chunks[0] == (3, 3, 2)
    assert len(pickle.dumps(dict(images.__dask_graph__()))) < 20_000  # 7.4 MB of slices, none in the graph
    np.testing.assert_array_equal(client.compute(images).result(), x)
    masks = client.compute(fdask.predict(linear_k5, images, brain)).result()
    np.testing.assert_array_equal(masks, linear_k5.predict(x, brain))


def test_worker_killed_mid_run_is_retried_with_correct_results(client, da, fdask, slices, linear_k5, tmp_path):
    """The first time one chunk is read, its worker process dies; dask reruns the lost work elsewhere."""
    x, brain = slices
    marker = str(tmp_path / "killed-worker-pid")

    def load_chunk(block, block_info=None):
        # Runs on a worker (this closure is shipped by value).  Chunk 2, first attempt: record the
        # worker's pid in the marker file and kill the process without any cleanup.
        if block_info and block_info[0]["chunk-location"][0] == 2:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return block
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(1)
        return block

    images = da.from_array(x, chunks=(2, -1, -1, -1)).map_blocks(load_chunk, meta=np.empty((0, 0, 0, 0), np.float32))
    before = set(client.scheduler_info()["workers"])
    result = client.compute(fdask.predict(linear_k5, images, brain)).result()
    np.testing.assert_array_equal(result, linear_k5.predict(x, brain))
    with open(marker) as fh:  # the kill happened, in a worker process of this cluster
        pid = int(fh.read())
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it
    assert set(client.scheduler_info()["workers"]) != before


@pytest.mark.parametrize("target", ["new", "numpy", "npy-file"])
def test_compute_into_on_cluster_equals_in_process(client, da, fdask, slices, linear_k5, target, tmp_path):
    """Each chunk written into the output as its task finishes: the masks equal predict's, whatever the target."""
    x, brain = slices
    masks = fdask.predict(linear_k5, da.from_array(x, chunks=((3, 1, 4), -1, -1, -1)), brain)
    out = {"new": None, "numpy": np.zeros(masks.shape, bool),
           "npy-file": np.lib.format.open_memmap(tmp_path / "masks.npy", mode="w+", dtype=bool, shape=masks.shape)}[target]
    result = fdask.compute_into(masks, out, client=client)
    assert out is None or result is out
    expected = linear_k5.predict(x, brain)
    assert expected.any()
    np.testing.assert_array_equal(result, expected)
    if target == "npy-file":
        del result, out
        np.testing.assert_array_equal(np.load(tmp_path / "masks.npy"), expected)


def test_compute_into_on_cluster_places_every_block(client, da, fdask):
    """Chunks along several axes, uneven, with a cast: every block lands in its place (the default client)."""
    assert fdask._default_client() is client
    values = np.arange(7 * 9 * 5, dtype=np.int32).reshape(7, 9, 5)
    lazy = da.from_array(values, chunks=((2, 4, 1), (3, 6), (5,))) * 3 - 1
    out = np.full(values.shape, -7, dtype=np.int64)
    assert fdask.compute_into(lazy, out) is out
    np.testing.assert_array_equal(out, values.astype(np.int64) * 3 - 1)


def test_compute_into_on_cluster_raises_a_failed_task(client, da, fdask):
    def fail_on_block_two(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            raise RuntimeError("block 2 failed")
        return block

    lazy = da.from_array(np.arange(12.0), chunks=2).map_blocks(fail_on_block_two, dtype=float)
    with pytest.raises(RuntimeError, match="block 2 failed"):
        fdask.compute_into(lazy, client=client)
    assert client.compute(da.from_array(np.arange(3.0), chunks=1).sum()).result() == 3  # still usable


# ----------------------------------------------------------------------------- without a cluster

def test_default_scheduler_and_cache(da, fdask, slices, linear_k5):
    x, brain = slices
    masks = fdask.predict(linear_k5, da.from_array(x[:3], chunks=(1, -1, -1, -1)), brain[:3], n_jobs=2)
    np.testing.assert_array_equal(masks.compute(scheduler="synchronous"), linear_k5.predict(x[:3], brain[:3]))
    np.testing.assert_array_equal(masks.compute(scheduler="threads"), linear_k5.predict(x[:3], brain[:3]))
    digest = "0" * 64
    fdask._CACHE[digest] = linear_k5.model_
    assert fdask._cached_model(b"never read: the digest is found first", digest) is linear_k5.model_
    with pytest.raises(ValueError, match="not a readable .npz model file"):
        fdask._cached_model(b"garbage", "1" * 64)
    fdask._CACHE.clear()



@pytest.mark.parametrize("shape, chunks", [((10,), 3), ((6, 7), (4, 3)), ((5, 4, 3), ((1, 4), 2, 3)), ((4, 5), -1)])
def test_compute_into_without_a_cluster(da, fdask, monkeypatch, tmp_path, shape, chunks):
    """No client: dask's threads write each chunk into the target; equal to .compute(), any blocks."""
    monkeypatch.setattr(fdask, "_default_client", lambda: None)  # as in a process that has no Client
    values = np.random.default_rng(len(shape)).standard_normal(shape)
    lazy = da.from_array(values, chunks=chunks) * 2
    np.testing.assert_array_equal(fdask.compute_into(lazy), values * 2)
    out = np.zeros(shape, dtype=np.float64)
    assert fdask.compute_into(lazy, out) is out
    np.testing.assert_array_equal(out, values * 2)
    mapped = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float64, shape=shape)
    fdask.compute_into(lazy, mapped)
    del mapped
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), values * 2)
    masks = lazy > 0  # bool into uint8: a same-kind cast
    into = fdask.compute_into(masks, np.full(shape, 7, dtype=np.uint8))
    np.testing.assert_array_equal(into, (values > 0).astype(np.uint8))


def test_compute_into_bad_input(da, fdask):
    lazy = da.from_array(np.arange(12.0).reshape(3, 4), chunks=2)
    with pytest.raises(TypeError, match="array must be a dask array, got ndarray"):
        fdask.compute_into(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"out must have the array's shape \(3, 4\), got \(4, 3\)"):
        fdask.compute_into(lazy, np.zeros((4, 3)))
    with pytest.raises(TypeError, match="out has dtype bool, which the array's float64 does not cast to"):
        fdask.compute_into(lazy, np.zeros((3, 4), dtype=bool))
    with pytest.raises(TypeError, match="out must be an array with shape, dtype and slice assignment, got list"):
        fdask.compute_into(lazy, [[0.0] * 4] * 3)
    frozen = np.zeros((3, 4))
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fdask.compute_into(lazy, frozen)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client, got str"):
        fdask.compute_into(lazy, client="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="array must have known chunk sizes"):
        fdask.compute_into(lazy[lazy > 3])
    assert (frozen == 0).all()


def test_tasks_get_their_chunk_without_a_copy(da, fdask, slices, linear_k5, monkeypatch):
    """Each task hands the segmenter the block its input task made, not a copy (a copy per task cost 15 %
    of a worker's time)."""
    x, brain = slices
    made, seen = [], []

    def source(block):
        made.append(block)
        return block

    class Recorder:
        def predict(self, images, brain, n_jobs=None):
            seen.append(any(images is block for block in made))
            return np.zeros(images.shape[:3], dtype=bool)

    monkeypatch.setattr(fdask, "_cached_model", lambda model, digest: Recorder())
    images = da.from_array(x, chunks=(3, -1, -1, -1)).map_blocks(source, meta=np.empty((0, 0, 0, 0), np.float32))
    fdask.predict(linear_k5, images, brain).compute(scheduler="synchronous")
    assert seen == [True, True, True]


def test_cache_is_bounded(da, fdask, slices, linear_k5):
    import dataclasses

    from fastseg.model import PostProcessing
    from fastseg.persistence import dumps

    fdask._CACHE.clear()
    blobs = []
    for k in range(fdask._CACHE_SIZE + 2):
        seg = PixelSegmenter(**{**K5_LINEAR, "min_size": k})
        seg.__dict__.update({name: value for name, value in vars(linear_k5).items() if name.endswith("_")})
        seg.model_ = dataclasses.replace(linear_k5.model_, postprocessing=PostProcessing(min_size=k))
        blobs.append(dumps(seg))
    first = fdask._cached_model(blobs[0], "d0")
    assert fdask._cached_model(blobs[0], "d0") is first and first.postprocessing.min_size == 0
    for i, blob in enumerate(blobs[1:], 1):
        fdask._cached_model(blob, f"d{i}")
    assert len(fdask._CACHE) == fdask._CACHE_SIZE and "d0" not in fdask._CACHE
    fdask._CACHE.clear()


def test_bad_input(da, fdask, slices, linear_k5, brats_train):
    from sklearn.exceptions import NotFittedError
    from sklearn.tree import DecisionTreeClassifier

    x, brain = slices
    images = da.from_array(x, chunks=(4, -1, -1, -1))
    brain_before = brain.copy()
    with pytest.raises(TypeError, match=r"images must be a dask array of shape \(N, H, W, C\), got array of shape \(8, 240, 240, 4\)"):
        fdask.predict(linear_k5, x)
    with pytest.raises(TypeError, match="images must be a dask array .* got NoneType"):
        fdask.predict(linear_k5, None)
    with pytest.raises(ValueError, match=r"images must have shape \(N, H, W, C\), got ndim=3"):
        fdask.predict(linear_k5, images[0])
    with pytest.raises(ValueError, match="images must have shape .* got ndim=5"):
        fdask.predict(linear_k5, images[None])
    with pytest.raises(TypeError, match="images must have a real .* dtype, got dtype complex64"):
        fdask.predict(linear_k5, images.astype(np.complex64))
    with pytest.raises(TypeError, match="images must have a real .* dtype, got dtype bool"):
        fdask.predict(linear_k5, images > 0)
    with pytest.raises(ValueError, match="images must not have zero-size axes"):
        fdask.predict(linear_k5, images[:0])
    with pytest.raises(ValueError, match="images have 3 channels but the model was fitted on 4"):
        fdask.predict(linear_k5, images[..., :3])
    with pytest.raises(ValueError, match="images must have known chunk sizes"):
        fdask.predict(linear_k5, images[images[:, 0, 0, 0] > -100])
    with pytest.raises(NotFittedError):
        fdask.predict(PixelSegmenter(), images)
    with pytest.raises(TypeError, match="segmenter must be a fitted fastseg.PixelSegmenter, got LinearSVC"):
        fdask.predict(linear_k5.classifier_[-1], images)
    t = brats_train
    tree = PixelSegmenter(k=1, classifier=DecisionTreeClassifier(max_depth=2), mean_sizes=(), asymmetry=False,
                          max_pixels=50, random_state=0).fit(t["x"][:2], t["y"][:2], t["brain"][:2])
    with pytest.raises(TypeError, match="sends the segmenter to workers as a model file: only linear and MLP"):
        fdask.predict(tree, images)
    with pytest.raises(ValueError, match=r"brain must have shape \(8, 240, 240\), got shape \(7, 240, 240\)"):
        fdask.predict(linear_k5, images, brain[:7])
    with pytest.raises(ValueError, match=r"brain must have shape \(8, 240, 240\), got shape \(7, 240, 240\)"):
        fdask.predict(linear_k5, images, da.from_array(brain[:7]))
    with pytest.raises(TypeError, match="brain must be a boolean or integer mask, got dtype complex"):
        fdask.predict(linear_k5, images, da.from_array(brain.astype(np.complex64)))
    with pytest.raises(ValueError, match="brain with a floating dtype may hold only 0 and 1"):
        fdask.predict(linear_k5, images, brain * 0.5)
    with pytest.raises(ValueError, match="n_jobs must be None or a non-zero integer, got 0"):
        fdask.predict(linear_k5, images, n_jobs=0)
    with pytest.raises(AttributeError, match="predict_proba is not available"):
        fdask.predict_proba(linear_k5, images)
    # values are checked where the chunks are: when computing
    bad = x.copy()
    bad[5, 100, 100, 2] = np.nan
    lazy = fdask.predict(linear_k5, da.from_array(bad, chunks=(4, -1, -1, -1)))
    with pytest.raises(ValueError, match="images must contain only finite values"):
        lazy.compute(scheduler="synchronous")
    np.testing.assert_array_equal(brain, brain_before)


def test_read_npy_bad_input(fdask, tmp_path):
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.zeros((3, 4, 5, 2), np.float32)))
    np.save(tmp_path / "scalar.npy", np.float32(1))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "ok.npy", np.zeros((3, 4, 4, 2), np.float32))
    (tmp_path / "text.npy").write_text("not an array")
    np.savez(tmp_path / "archive.npz", x=np.zeros(3))
    with pytest.raises(FileNotFoundError, match="no .npy file at"):
        fdask.read_npy(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="is not a .npy array file"):
        fdask.read_npy(tmp_path / "archive.npz")
    with pytest.raises(ValueError, match="is in Fortran order; read_npy needs C order"):
        fdask.read_npy(tmp_path / "fortran.npy")
    with pytest.raises(ValueError, match="holds a 0-d array"):
        fdask.read_npy(tmp_path / "scalar.npy")
    with pytest.raises(ValueError, match="objects.npy' is not a readable .npy array"):
        fdask.read_npy(tmp_path / "objects.npy")
    with pytest.raises(ValueError, match="text.npy' is not a readable .npy array"):
        fdask.read_npy(tmp_path / "text.npy")
    with pytest.raises(ValueError, match="chunks must be a positive integer, got 0"):
        fdask.read_npy(tmp_path / "ok.npy", chunks=0)
    with pytest.raises(TypeError, match="chunks must be a positive integer, got float"):
        fdask.read_npy(tmp_path / "ok.npy", chunks=2.5)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike path, got NoneType"):
        fdask.read_npy(None)
    # a file cut short after the graph was made fails when its chunk is read
    lazy = fdask.read_npy(tmp_path / "ok.npy", chunks=2)
    raw = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "ok.npy").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="shorter than its header says"):
        lazy.compute(scheduler="synchronous")
