"""The model's forced choice for multiple-choice answers no extraction rule could read.

After the prompt, the response and "\\nThe answer is", the (unsteered) model's next-token
logits of " A", " B", ... are the evidence, kept in the results cache as log-probabilities
renormalised over the labels (`Generator.label_scores`). Two ways to decide from them
(`kvsl eval --forced-choice`):

    model       the most likely label
    calibrated  the most likely label relative to the letter prior of the answers being
                decided: the mean of their label log-probabilities (per method and
                label set), subtracted label by label (batch calibration, Zhou et al.,
                2023, in log space).
                With fewer than `MIN_CALIBRATION_ROWS` such answers the prior is not
                estimated and the most likely label wins, as with `model`

Why calibrate: SmolLM2-135M after "The answer is" says " A" for most cut-off answers
whatever the question (docs/styles.md, round 6). A method whose answers are cut off more
often (a steered style that states its plan first) then leans harder on that bias, so the
raw argmax scores the letter prior, not the response. The prior comes from the answers
themselves because a content-free prompt's prior (contextual calibration, Zhao et al.,
2021: "N/A" as the stem, every choice and the answer) was measured and overcorrects on
this model: it moved 45-98% of the forced picks onto " B" (docs/styles.md, round 8).
The decision for one answer depends on the others decided with it; `model` stays the
default because every figure in docs/results.md was measured with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

FORCED_MODES = ("model", "calibrated", "overlap")
# Fewer answers than this to decide with one label set: no prior is estimated from them
# (with one answer its own scores would be the prior, and every label would tie).
MIN_CALIBRATION_ROWS = 8

Scores = dict[str, float]  # label → log-probability, renormalised over the labels


def batch_prior(rows: Sequence[Mapping[str, float]]) -> dict[tuple[str, ...], Scores]:
    """Per label set, the mean label log-probability over `rows` (each a label →
    log-probability map); label sets with fewer than `MIN_CALIBRATION_ROWS` rows get none.

    The mean of log-probabilities, not of probabilities: a bias every answer shares adds
    the same amount to a label's logit in each row, and this mean removes exactly that
    (the mean of probabilities undercorrects a strong one).

    >>> import math
    >>> rows = [{"A": math.log(0.9), "B": math.log(0.1)}, {"A": math.log(0.5), "B": math.log(0.5)}]
    >>> prior = batch_prior(rows * 4)[("A", "B")]
    >>> round(math.exp(prior["A"]), 2), round(math.exp(prior["B"]), 2)
    (0.67, 0.22)
    >>> decide(rows[1], prior), decide(rows[1])  # 0.5 is below A's mean, above B's
    ('B', 'A')
    >>> batch_prior(rows)
    {}
    """
    groups: dict[tuple[str, ...], list[Mapping[str, float]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return {
        labels: {
            label: sum(r[label] for r in members) / len(members)
            for label in labels
        }
        for labels, members in groups.items()
        if len(members) >= MIN_CALIBRATION_ROWS
    }


def decide(
    scores: Mapping[str, float] | None, prior: Mapping[str, float] | None = None
) -> str | None:
    """The label with the highest score, less its prior when one is given; ties go to the
    first label. None without scores.

    >>> decide({"A": -0.2, "B": -1.8})
    'A'
    >>> decide({"A": -0.2, "B": -1.8}, {"A": -0.05, "B": -3.0})
    'B'
    """
    if not scores:
        return None
    shift = prior if prior is not None and set(prior) == set(scores) else {}
    adjusted = {label: value - shift.get(label, 0.0) for label, value in scores.items()}
    return max(adjusted, key=adjusted.__getitem__)
