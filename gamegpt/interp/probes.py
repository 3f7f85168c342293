"""Linear probes: a softmax classifier per square (or per one-number label) on one site's activations,
trained on some games and evaluated on others, with the controls measured in the same run.

A probe reads the activations standardised (mean 0, variance 1 per dimension, from the training set); its
weights are folded back afterwards, so `ProbeWeights.weight` (d, squares, classes) and `bias` act on the raw
activations, and `weight[:, s, b] - weight[:, s, a]` is the raw direction that moves square s from a to b.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class ProbeWeights:
    weight: np.ndarray
    """(d, outputs, classes), acting on raw activations."""
    bias: np.ndarray
    """(outputs, classes)."""

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(N, outputs, classes) logits for activations (N, d)."""
        return np.einsum("nd,doc->noc", x, self.weight) + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.logits(x).argmax(-1)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)

    def to_tensors(self) -> dict[str, np.ndarray]:
        return {"weight": np.ascontiguousarray(self.weight, dtype=np.float32),
                "bias": np.ascontiguousarray(self.bias, dtype=np.float32)}


def train_probe(x: np.ndarray, y: np.ndarray, n_classes: int, *, seed: int = 0, steps: int = 30,
                ridge: float = 1e-2, weight_decay: float = 1e-4) -> ProbeWeights:
    """A linear softmax probe from activations `x` (N, d) to labels `y` (N, outputs) in [0, n_classes): the
    least-squares fit to one-hot targets (closed form) as a start, then `steps` L-BFGS iterations of the
    softmax cross-entropy (full batch; deterministic, so `seed` is unused but kept for the record)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if y.ndim == 1:
        y = y[:, None]
    n, d = x.shape
    outputs = y.shape[1]
    mean = x.mean(0)
    std = x.std(0) + 1e-6
    xs = np.concatenate([(x - mean) / std, np.ones((n, 1))], axis=1)
    onehot = np.zeros((n, outputs * n_classes))
    onehot[np.arange(n)[:, None], np.arange(outputs)[None, :] * n_classes + y] = 1.0
    gram = xs.T @ xs + ridge * n * np.eye(d + 1)
    start = np.linalg.solve(gram, xs.T @ (onehot - 1.0 / n_classes)) * n_classes
    xt = torch.from_numpy(xs.astype(np.float32))
    yt = torch.from_numpy(y.reshape(-1))
    params = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    if steps > 0:
        optimizer = torch.optim.LBFGS([params], max_iter=steps, history_size=10, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            logits = (xt @ params).view(n * outputs, n_classes)
            loss = F.cross_entropy(logits, yt) + weight_decay * params[:-1].pow(2).sum() / outputs
            loss.backward()
            return loss
        optimizer.step(closure)
    fitted = params.detach().numpy().astype(np.float64)
    w = fitted[:-1].reshape(d, outputs, n_classes) / std[:, None, None]
    b = fitted[-1].reshape(outputs, n_classes) - np.einsum("d,doc->oc", mean, w)
    return ProbeWeights(w.astype(np.float32), b.astype(np.float32))


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Share of (position, output) labels predicted right."""
    y = y if y.ndim == 2 else y[:, None]
    pred = pred if pred.ndim == 2 else pred[:, None]
    return float((pred == y).mean())


def majority_baseline(y_train: np.ndarray, y_test: np.ndarray, n_classes: int) -> float:
    """Accuracy on the test set of predicting, for each output, its most common class in the training set."""
    y_train = y_train if y_train.ndim == 2 else y_train[:, None]
    y_test = y_test if y_test.ndim == 2 else y_test[:, None]
    majority = np.array([np.bincount(y_train[:, o], minlength=n_classes).argmax() for o in range(y_train.shape[1])])
    return float((y_test == majority[None, :]).mean())


def probe_layer(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, n_classes: int,
                *, seed: int = 0, steps: int = 30) -> tuple[dict[str, Any], ProbeWeights]:
    """Train on one split, score on the other: accuracy, train accuracy, and (boards) share of boards all right."""
    probe = train_probe(x_train, y_train, n_classes, seed=seed, steps=steps)
    pred = probe.predict(x_test)
    y = y_test if y_test.ndim == 2 else y_test[:, None]
    result = {"accuracy": accuracy(pred, y), "train_accuracy": accuracy(probe.predict(x_train), y_train)}
    if y.shape[1] > 1:
        result["boards_all_right"] = float((pred == y).all(axis=1).mean())
    return result, probe
