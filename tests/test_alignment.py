"""The alignment metrics of the platonic study: mutual k-NN (Huh et al. 2024) and CKA."""

from __future__ import annotations

import numpy as np
import pytest

from gamegpt.experiments.alignment import cka, mutual_knn, mutual_knn_chance, nearest_neighbours


def _rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))  # a uniformly random orthogonal matrix


def test_identical_representations_score_one() -> None:
    a = np.random.default_rng(0).normal(size=(200, 16))
    assert mutual_knn(a, a, k=10) == 1.0
    assert cka(a, a) == pytest.approx(1.0)
    assert cka(a, a, debiased=True) == pytest.approx(1.0)


def test_independent_random_representations_score_near_chance() -> None:
    rng = np.random.default_rng(1)
    n, k = 400, 10
    scores = [mutual_knn(rng.normal(size=(n, 32)), rng.normal(size=(n, 24)), k=k) for _ in range(5)]
    chance = mutual_knn_chance(n, k)
    assert chance == pytest.approx(10 / 399)
    assert abs(np.mean(scores) - chance) < 0.01, (scores, chance)
    debiased = [cka(rng.normal(size=(n, 32)), rng.normal(size=(n, 24)), debiased=True) for _ in range(5)]
    assert abs(np.mean(debiased)) < 0.02, debiased
    # plain linear CKA is biased upward for unrelated features, which is why the study also reports debiased
    assert 0.03 < cka(rng.normal(size=(n, 32)), rng.normal(size=(n, 24))) < 0.3


def test_rotation_and_scale_leave_the_scores_unchanged() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(300, 20))
    b = a @ rng.normal(size=(20, 12)) + 0.5 * rng.normal(size=(300, 12))  # related to a, not equal
    rotated = 3.0 * a @ _rotation(20, rng)
    assert mutual_knn(a, rotated) == 1.0
    assert cka(a, rotated) == pytest.approx(1.0)
    assert mutual_knn(rotated, b) == pytest.approx(mutual_knn(a, b))
    assert cka(rotated, b) == pytest.approx(cka(a, b))
    assert cka(rotated, b, debiased=True) == pytest.approx(cka(a, b, debiased=True))
    # a shift changes cosine neighbours but not CKA (it centres); a non-orthogonal map changes both
    stretched = a * np.linspace(0.1, 10, 20)
    assert mutual_knn(a, stretched) < 0.9 and cka(a, stretched) < 0.9


def test_related_representations_lie_between_chance_and_one() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 16))
    scores = [mutual_knn(a, a + noise * rng.normal(size=a.shape)) for noise in (0.1, 0.5, 2.0)]
    assert 1.0 > scores[0] > scores[1] > scores[2] > mutual_knn_chance(300, 10)
    ckas = [cka(a, a + noise * rng.normal(size=a.shape)) for noise in (0.1, 0.5, 2.0)]
    assert 1.0 > ckas[0] > ckas[1] > ckas[2]


def test_neighbours_exclude_self_and_bad_shapes_are_refused() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert nearest_neighbours(x, 1).ravel().tolist() == [1, 0, 3, 2]
    with pytest.raises(ValueError, match="rows"):
        mutual_knn(x, x[:3], k=1)
    with pytest.raises(ValueError, match="k must be"):
        mutual_knn(x, x, k=4)
    with pytest.raises(ValueError, match="NaN"):
        cka(x, np.full_like(x, np.nan))


def test_the_precomputed_forms_agree() -> None:
    from gamegpt.experiments.alignment import cka_of_grams, gram, mutual_knn_of_neighbours

    rng = np.random.default_rng(4)
    a = rng.normal(size=(120, 10))
    b = a @ rng.normal(size=(10, 7)) + rng.normal(size=(120, 7))
    assert mutual_knn_of_neighbours(nearest_neighbours(a, 5), nearest_neighbours(b, 5)) == mutual_knn(a, b, k=5)
    assert cka_of_grams(gram(a), gram(b)) == pytest.approx(cka(a, b))
    assert cka_of_grams(gram(a), gram(b), debiased=True) == pytest.approx(cka(a, b, debiased=True))
