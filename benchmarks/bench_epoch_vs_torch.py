"""One epoch of mini-batch SGD on softmax regression: the course's NumPy code against PyTorch.

NumPy side: the reference ``solutions.minibatch_sgd`` (one epoch per call) with the model's
gradient ``descent.models.cross_entropy_gradient``. PyTorch side: the same linear model (a
weight matrix W of shape (65, 10); the bias is the last input column), ``F.cross_entropy`` and
``torch.optim.SGD``, in float64 and float32. Both sides get the same data (the digits training
split, 1347 x 65), the same batch size, the same learning rate, the same starting W and the
same shuffled order, and the same number of threads (``torch.set_num_threads`` and a
threadpoolctl limit for NumPy's BLAS). After the first epoch the two W are compared, to show
that both compute the same thing.

Epochs of the two sides are interleaved, so that a busy machine slows both alike; the script
prints the median and the best wall-clock time per epoch, the median CPU time per epoch
(``time.process_time``, which other programs on a busy machine do not inflate) and the ratios
NumPy / PyTorch (below 1: NumPy is faster). It prints and never asserts: timings depend on
the machine.

    python benchmarks/bench_epoch_vs_torch.py [--batch-size 32] [--threads 1] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from descent.data import digits_split
from descent.models import cross_entropy_gradient
from solutions import minibatch_sgd

LEARNING_RATE = 0.1
SEED = 0


def numpy_epoch(X, y, W, batch_size, seed):
    """One epoch of the reference mini-batch SGD; returns the new W."""
    W_new, _ = minibatch_sgd(
        X, y, W, cross_entropy_gradient, LEARNING_RATE, batch_size, 1, np.random.default_rng(seed)
    )
    return W_new


class TorchSoftmaxSGD:
    """The same model and update in PyTorch: W (d, K) as a leaf tensor, torch.optim.SGD."""

    def __init__(self, X, y, W0, dtype):
        self.X = torch.from_numpy(X).to(dtype)
        self.y = torch.from_numpy(y)
        self.W = torch.tensor(W0, dtype=dtype, requires_grad=True)
        self.optimizer = torch.optim.SGD([self.W], lr=LEARNING_RATE)

    def epoch(self, batch_size, seed):
        """One epoch with the reference's order: rng.permutation(n), consecutive batches."""
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(self.X)))
        X, y = self.X[order], self.y[order]
        for start in range(0, len(X), batch_size):
            loss = F.cross_entropy(
                X[start : start + batch_size] @ self.W, y[start : start + batch_size]
            )
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return self.W.detach().numpy().astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30, help="timed epochs per side")
    args = parser.parse_args()

    X, _, y, _ = digits_split()
    W0 = np.zeros((X.shape[1], int(y.max()) + 1))
    n_batches = -(-len(X) // args.batch_size)
    torch.set_num_threads(args.threads)
    print(
        f"softmax regression on digits: X {X.shape}, W {W0.shape}, batch size "
        f"{args.batch_size} ({n_batches} updates per epoch), lr {LEARNING_RATE}"
    )
    print(
        f"threads: {args.threads} (torch.set_num_threads and NumPy BLAS via threadpoolctl); "
        f"numpy {np.__version__}, torch {torch.__version__}"
    )
    print(
        "NumPy computes in float64 for both rows: minibatch_sgd and descent.models cast to float.\n"
    )

    with threadpool_limits(limits=args.threads):
        for dtype in (torch.float64, torch.float32):
            model = TorchSoftmaxSGD(X, y, W0, dtype)
            W_numpy = numpy_epoch(X, y, W0, args.batch_size, SEED)
            W_torch = model.epoch(args.batch_size, SEED)  # the same first epoch
            difference = np.abs(W_numpy - W_torch).max()
            for _ in range(3):  # warm-up
                numpy_epoch(X, y, W0, args.batch_size, SEED)
                model.epoch(args.batch_size, SEED)
            times = {"numpy": [], "torch": []}  # wall-clock seconds per epoch
            cpu = {"numpy": [], "torch": []}  # CPU seconds per epoch (process_time)
            for repeat in range(args.repeats):
                for side, run in (("numpy", numpy_epoch), ("torch", None)):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    if run is None:
                        model.epoch(args.batch_size, SEED + repeat)
                    else:
                        run(X, y, W0, args.batch_size, SEED + repeat)
                    times[side].append(time.perf_counter() - start)
                    cpu[side].append(time.process_time() - start_cpu)
            median = {side: statistics.median(t) for side, t in times.items()}
            best = {side: min(t) for side, t in times.items()}
            median_cpu = {side: statistics.median(t) for side, t in cpu.items()}
            name = str(dtype).removeprefix("torch.")
            print(f"torch {name}: max |W_numpy - W_torch| after one epoch = {difference:.2e}")
            for side in ("numpy", "torch"):
                print(
                    f"  {side:5s}  median {1e3 * median[side]:7.2f} ms/epoch "
                    f"({1e6 * median[side] / n_batches:6.1f} us/update), "
                    f"best {1e3 * best[side]:7.2f} ms, median CPU {1e3 * median_cpu[side]:7.2f} ms"
                )
            print(
                f"  ratio numpy / torch: median {median['numpy'] / median['torch']:.2f}, "
                f"best {best['numpy'] / best['torch']:.2f}, median CPU "
                f"{median_cpu['numpy'] / median_cpu['torch']:.2f}  (target: at most 1.5)\n"
            )


if __name__ == "__main__":
    main()
