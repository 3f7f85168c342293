"""How alike two representations of the same inputs are: mutual k-nearest neighbours and CKA.

Both take two matrices with one row per input (the same inputs, in the same order) and any number of
columns each, and return a number in [0, 1]; both are 1 for identical representations and unchanged by a
rotation (or any orthogonal map) of either one, so two networks whose features differ only by a change of
basis count as aligned.

- `mutual_knn(a, b, k)`: the metric of Huh, Cheung, Wang and Isola (2024), "The Platonic Representation
  Hypothesis". Rows are scaled to unit length; for each input, the k others nearest to it (by cosine
  similarity) in `a` and in `b`; the score is the mean share of the k that the two lists have in common.
  Independent representations score about k / (n - 1) (`mutual_knn_chance`).
- `cka(a, b)`: linear centred kernel alignment (Kornblith et al. 2019). Plain CKA of independent random
  features is well above 0 when the width is not small beside the number of inputs; `debiased=True` uses
  the unbiased HSIC estimator (Song et al. 2012; Nguyen et al. 2021), near 0 for independent features.

Pure numpy; nothing of the package is imported, so any layer could take it.
"""

from __future__ import annotations

import numpy as np


def _as_matrix(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (inputs, features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have one row per input each, got {a.shape[0]} and {b.shape[0]} rows")
    return a, b


def nearest_neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k nearest other rows by cosine similarity (ties broken by index)."""
    x = _as_matrix(x, "x")
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and the number of inputs - 1 ({n - 1}), got {k}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)  # never one's own neighbour
    # a stable sort of the negated similarities: equal similarities keep index order, so results repeat
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def mutual_knn(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean over inputs of |kNN_a(i) ∩ kNN_b(i)| / k (Huh et al. 2024): 1 when both representations give
    every input the same neighbours, about `mutual_knn_chance(n, k)` when they are unrelated."""
    a, b = _pair(a, b)
    return mutual_knn_of_neighbours(nearest_neighbours(a, k), nearest_neighbours(b, k))


def mutual_knn_of_neighbours(neighbours_a: np.ndarray, neighbours_b: np.ndarray) -> float:
    """`mutual_knn` from the (n, k) neighbour lists of `nearest_neighbours`, for comparing many pairs of
    representations without finding each one's neighbours again."""
    if neighbours_a.shape != neighbours_b.shape:
        raise ValueError(f"neighbour lists differ in shape: {neighbours_a.shape} and {neighbours_b.shape}")
    n, k = neighbours_a.shape
    mask_a = np.zeros((n, n), dtype=bool)
    mask_b = np.zeros((n, n), dtype=bool)
    rows = np.arange(n)[:, None]
    mask_a[rows, neighbours_a] = True
    mask_b[rows, neighbours_b] = True
    return float((mask_a & mask_b).sum(axis=1).mean() / k)


def mutual_knn_chance(n: int, k: int) -> float:
    """The expected mutual k-NN score of two unrelated representations of n inputs: k / (n - 1)."""
    return k / (n - 1)


def _hsic_unbiased(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    """The unbiased HSIC estimator of Song et al. (2012), up to a constant factor that CKA cancels."""
    n = gram_x.shape[0]
    kx, ky = gram_x.copy(), gram_y.copy()
    np.fill_diagonal(kx, 0.0)
    np.fill_diagonal(ky, 0.0)
    term = np.sum(kx * ky) + kx.sum() * ky.sum() / ((n - 1) * (n - 2)) - 2.0 * kx.sum(0) @ ky.sum(0) / (n - 2)
    return float(term / (n * (n - 3)))


def cka(a: np.ndarray, b: np.ndarray, *, debiased: bool = False) -> float:
    """Linear CKA: ||a_c^T b_c||_F^2 / (||a_c^T a_c||_F ||b_c^T b_c||_F) with columns centred; with
    `debiased`, the same ratio of unbiased HSIC estimates (needs at least 4 inputs; may dip below 0). 0 when
    either representation is constant over the inputs."""
    a, b = _pair(a, b)
    a = a - a.mean(axis=0, keepdims=True)
    b = b - b.mean(axis=0, keepdims=True)
    if not debiased:
        cross = np.linalg.norm(a.T @ b) ** 2
        norm = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
        return float(cross / norm) if norm > 0 else 0.0
    return cka_of_grams(a @ a.T, b @ b.T, debiased=True)


def gram(x: np.ndarray) -> np.ndarray:
    """The (n, n) linear kernel of column-centred `x`, for `cka_of_grams`."""
    x = _as_matrix(x, "x")
    x = x - x.mean(axis=0, keepdims=True)
    return x @ x.T


def cka_of_grams(gram_a: np.ndarray, gram_b: np.ndarray, *, debiased: bool = False) -> float:
    """`cka` from the centred linear kernels of `gram`, for comparing many pairs without recomputing them."""
    if gram_a.shape != gram_b.shape:
        raise ValueError(f"kernels differ in shape: {gram_a.shape} and {gram_b.shape}")
    if not debiased:
        norm = np.linalg.norm(gram_a) * np.linalg.norm(gram_b)
        return float(np.sum(gram_a * gram_b) / norm) if norm > 0 else 0.0
    if gram_a.shape[0] < 4:
        raise ValueError("debiased CKA needs at least 4 inputs")
    xy = _hsic_unbiased(gram_a, gram_b)
    xx, yy = _hsic_unbiased(gram_a, gram_a), _hsic_unbiased(gram_b, gram_b)
    return float(xy / np.sqrt(xx * yy)) if xx > 0 and yy > 0 else 0.0
