"""Statistics for `compare` and `ab`, written out here (no scipy on the
target machines): the median and its distribution-free interval, a
percentile-bootstrap confidence interval for a ratio of medians, the
two-sided Mann-Whitney U test, and for paired repetitions the exact sign
test and a paired bootstrap.

Every function is deterministic: the bootstrap takes an explicit seed, so
the same two files always give the same interval.
"""

import itertools
import math
import random
from functools import lru_cache

# The exact null distribution of U is computed by a recurrence whose cost
# grows with n1 * n2 * (n1 + n2); beyond this many values in all the normal
# approximation is accurate anyway.
EXACT_MAX_TOTAL = 40
# With ties the exact distribution is found by enumerating every split of
# the pooled ranks; allowed while the number of splits stays this small.
EXACT_TIES_MAX_SPLITS = 20000


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return math.nan
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2


def median_ci(values, target=0.95):
    """(median, low, high, level): the distribution-free interval of
    lib/stats.c's axm_median_ci, so that a file merged here (axbench ab)
    carries the same summary as one the harness wrote: [x_(j), x_(n+1-j)]
    for the largest j whose coverage 1 - 2 P(B <= j-1), B ~ Bin(n, 1/2),
    is still >= target; [min, max] with its smaller true level otherwise."""
    s = sorted(values)
    n = len(s)
    med = median(s)
    if n < 2:
        return med, med, med, 0.0
    j, level = 1, 1 - 2 * 0.5 ** n
    for t in range(2, n // 2 + 1):
        c = 1 - 2 * sum(math.comb(n, i) for i in range(t)) / 2 ** n
        if c < target:
            break
        j, level = t, c
    return med, s[j - 1], s[n - j], level


def quantile_sorted(s, q):
    """The q-quantile (0..1) of an already sorted list, by linear
    interpolation between closest ranks."""
    if not s:
        return math.nan
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def bootstrap_ratio_ci(base, new, level=0.95, resamples=2000, seed=0):
    """Percentile-bootstrap confidence interval of median(new)/median(base).

    Each side is resampled with replacement on its own (the repetitions of
    two runs are independent, not paired), the ratio of the two resampled
    medians is collected `resamples` times, and the interval is the central
    `level` share of those ratios. Returns (low, high); NaNs when a
    resampled base median can be zero (the ratio is then undefined)."""
    if not base or not new:
        return math.nan, math.nan
    if min(base) <= 0 <= max(base):
        return math.nan, math.nan
    rng = random.Random(seed)
    nb, nn = len(base), len(new)
    ratios = []
    rand = rng.random
    for _ in range(resamples):
        # explicit index draws keep the stream the same across Python
        # versions (random.choices' algorithm is an implementation detail)
        b = median([base[int(rand() * nb)] for _ in range(nb)])
        n = median([new[int(rand() * nn)] for _ in range(nn)])
        ratios.append(n / b)
    ratios.sort()
    tail = (1 - level) / 2
    return quantile_sorted(ratios, tail), quantile_sorted(ratios, 1 - tail)


def _ranks_doubled(pooled):
    """Twice the mid-rank of every value of `pooled` (integers, so that
    tied ranks compare exactly), and the sizes of the tie groups."""
    order = sorted(range(len(pooled)), key=lambda i: pooled[i])
    ranks = [0] * len(pooled)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and pooled[order[j + 1]] == pooled[order[i]]:
            j += 1
        # ranks i+1 .. j+1 share their mean; doubled: (i+1) + (j+1)
        for k in range(i, j + 1):
            ranks[order[k]] = i + j + 2
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@lru_cache(maxsize=None)
def _u_counts(m, n):
    """How many orderings of m x-values and n y-values give each U (the
    number of (x, y) pairs with x > y), for U = 0 .. m*n. Recurrence on
    whether the largest value is an x (it beats all n y's) or a y."""
    if m == 0 or n == 0:
        return (1,) + (0,) * (m * n)
    with_x = _u_counts(m - 1, n)  # shifted by n
    with_y = _u_counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, c in enumerate(with_y):
        out[u] += c
    for u, c in enumerate(with_x):
        out[u + n] += c
    return tuple(out)


def mann_whitney(x, y):
    """Two-sided Mann-Whitney U test of x against y.

    Returns (U of x, p-value, method): "exact" (no ties, small samples: the
    exact null distribution), "exact-ties" (ties, small samples: every split
    of the pooled mid-ranks enumerated), or "normal" (normal approximation
    with the tie correction of the variance and a continuity correction).
    The two-sided p-value doubles the smaller tail, capped at 1."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan, "none"
    pooled = list(x) + list(y)
    ranks2, ties = _ranks_doubled(pooled)
    r1_2 = sum(ranks2[:n1])
    u1 = r1_2 / 2 - n1 * (n1 + 1) / 2
    n = n1 + n2

    if not ties and n <= EXACT_MAX_TOTAL:
        counts = _u_counts(n1, n2)
        total = math.comb(n, n1)
        k = round(u1)
        lower = sum(counts[: k + 1]) / total
        upper = sum(counts[k:]) / total
        return u1, min(1.0, 2 * min(lower, upper)), "exact"

    if ties and math.comb(n, n1) <= EXACT_TIES_MAX_SPLITS:
        le = ge = 0
        total = 0
        for idx in itertools.combinations(range(n), n1):
            s = sum(ranks2[i] for i in idx)
            total += 1
            le += s <= r1_2
            ge += s >= r1_2
        return u1, min(1.0, 2 * min(le, ge) / total), "exact-ties"

    mu = n1 * n2 / 2
    tie_term = sum(t ** 3 - t for t in ties) / (n * (n - 1))
    var = n1 * n2 / 12 * ((n + 1) - tie_term)
    if var <= 0:
        return u1, 1.0, "normal"
    z = max(0.0, abs(u1 - mu) - 0.5) / math.sqrt(var)
    return u1, min(1.0, math.erfc(z / math.sqrt(2))), "normal"


def min_two_sided_p(n1, n2):
    """The smallest two-sided p-value the test can give for these sample
    sizes (complete separation, no ties): below the significance level or
    the comparison can never be significant, so it is "too few reps"."""
    if n1 == 0 or n2 == 0:
        return 1.0
    if n1 + n2 <= EXACT_MAX_TOTAL:
        return min(1.0, 2 / math.comb(n1 + n2, n1))
    return 0.0


def geomean(ratios):
    vals = [r for r in ratios if r and r > 0 and math.isfinite(r)]
    if not vals:
        return math.nan
    return math.exp(sum(math.log(r) for r in vals) / len(vals))


# ---------------------------------------------------------------------------
# Paired repetitions (axbench ab): repetition k of A and of B ran back to
# back, so whatever else the machine did hit both; the per-pair ratio
# cancels it.

def sign_test(diffs):
    """Two-sided exact sign test of "positive and negative differences are
    equally likely". Zeros are dropped. Robust where the signed-rank test is
    not: one pair that other work disturbed counts as one sign, whatever its
    size (with 9 pairs, 8 of one sign still give p = 0.039). Returns
    (positives, p)."""
    d = [x for x in diffs if x != 0 and math.isfinite(x)]
    n = len(d)
    if n == 0:
        return 0, 1.0
    pos = sum(1 for x in d if x > 0)
    k = min(pos, n - pos)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return pos, min(1.0, 2 * tail)


def min_sign_test_p(n):
    """The smallest two-sided p the exact sign test reaches with n pairs
    (all of one sign): 2 / 2^n; below the level or no change can ever be
    significant."""
    return sign_test([1] * n)[1]


def pairable(base, new):
    """Whether two value lists can be judged pair by pair: as many values
    on each side, and every base value positive (a pair's ratio divides by
    it)."""
    return bool(base) and len(base) == len(new) and all(v > 0 for v in base)


def bootstrap_paired_ci(ratios, level=0.95, resamples=2000, seed=0):
    """Percentile-bootstrap confidence interval of the median of per-pair
    ratios (pairs are resampled whole). Returns (low, high)."""
    if not ratios:
        return math.nan, math.nan
    rng = random.Random(seed)
    n = len(ratios)
    rand = rng.random
    meds = sorted(median([ratios[int(rand() * n)] for _ in range(n)])
                  for _ in range(resamples))
    tail = (1 - level) / 2
    return quantile_sorted(meds, tail), quantile_sorted(meds, 1 - tail)


def split_gap(values):
    """The largest gap between consecutive sorted values relative to the
    median, and the two groups it separates: how bimodal a handful of
    repetitions look (0 for fewer than 3 values)."""
    s = sorted(v for v in values if math.isfinite(v))
    if len(s) < 3:
        return 0.0, s, []
    med = median(s)
    if med == 0:
        return 0.0, s, []
    gaps = [(s[i + 1] - s[i], i) for i in range(len(s) - 1)]
    gap, i = max(gaps)
    return abs(gap / med), s[: i + 1], s[i + 1:]


def is_bimodal(values, gap):
    """(bimodal?, low group, high group): the largest gap between sorted
    values exceeds `gap` times their median, and with 5 values or more each
    group has at least 2 (one outlier among many is an outlier, not a
    mode; among 3 or 4 one value apart is all there is to go by)."""
    g, lo, hi = split_gap(values)
    need = 1 if len(values) < 5 else 2
    return g > gap and min(len(lo), len(hi)) >= need, lo, hi
