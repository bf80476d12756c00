"""Online anomaly score for real series of any kind: record ratios of several statistics.

Why this design: real series differ wildly in scale, noise, quantisation and shape, so a
score in σ (Gaussian tails) is not comparable across them. Each component here reduces
the stream to a non-negative *surprise statistic* ``d`` and compares it with the largest
value the series itself produced, ``R = d / D``: ``D`` is a running maximum that forgets
by a factor ``1 - 1/(memory + age_weight * age)`` per tick. ``R > 1`` means "more extreme
than anything in the series' history", an empirical tail probability whatever the
distribution (the generalisation of the "new min / new max" detector); because the memory
grows with the series' age, chance records grow only like ``log(length)``, so long and
short series raise similar numbers of false alarms and one threshold serves them all.
The k-th record in a row may raise ``D`` by at most ``grow**k``, so one outlier does not
hide the next one of similar size, while a real regime change is absorbed in a few ticks.
After an event of ratio ``R`` the next ticks are scored against ``R`` (decaying back to 1
over ``refractory`` ticks): the rest of the same event does not re-fire.

Components (each can be switched off for ablations):

* ``level``: distance of the value from a slow running mean (new min/max);
* ``jump``: the one-step change, or the forecast residual when the caller has a forecaster
  (the worker passes the LSTM's);
* ``shift``: a fast running mean against the slow one (sustained level shifts);
* ``vol``: a fast running mean of absolute changes (variance changes);
* ``stuck``: the length of a run of identical values (frozen feeds; off by default);
* ``shape``: distance of the latest subsequence (on a series decimated by ``shape_dec``)
  to its nearest neighbour in the recent past (matrix-profile discord, as in KNN-CAD), computed
  every ``shape_every`` decimated points so its numpy cost is amortised;
* ``fine`` (off by default): the same on the raw series with short subsequences;
* ``resid``: only when the caller passes a forecast residual (the worker: the LSTM's), that
  residual in σ of its own robust running statistics, ``resid_sigmas`` σ being a ratio of 1.

The combined score is the largest ratio, mapped to ``[0, 1)`` as ``R / (1 + R)`` (a new
record scores 0.5). Everything is causal: a tick is scored before it updates the state.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

COMPONENTS = ("level", "jump", "shift", "vol", "stuck", "shape", "fine", "resid")
R_CAP = 100.0  # keeps the product of ratios finite


@dataclass(frozen=True, slots=True)
class SeriesConfig:
    warmup: int = 50  # ticks before any non-zero score
    slow: float = 0.005  # EW weight of the slow mean (~200-tick memory)
    fast: float = 0.1  # EW weight of the fast mean and volatility (~10 ticks)
    memory: int = 100  # ticks over which a record's reference decays by 1/e, plus age_weight * age
    age_weight: float = 2.0
    refractory: int = 5  # ticks over which an event's level decays back (0: no hold)
    grow: float = 1.1  # the k-th record in a row raises its reference by at most grow**k
    components: tuple[str, ...] = ("level", "jump", "shift", "vol", "shape", "resid")
    shape_dec: int = 4  # raw ticks averaged into one point of the shape series
    shape_len: int = 32  # subsequence length in decimated points
    shape_hist: int = 1024  # decimated points of history searched for a neighbour
    shape_every: int = 4  # search every this many decimated points
    fine_len: int = 16  # the "fine" shape component: raw points per subsequence
    fine_hist: int = 512  # raw points of history it searches
    fine_every: int = 4  # search every this many ticks
    resid_sigmas: float = 3.8  # "resid": a forecast residual this many σ out is a ratio of 1
    resid_alpha: float = 0.02  # EW weight of the residual's mean and variance (~50 ticks)
    combine: str = "max"  # "max": largest ratio; "product": product of the ratios above 1
    lift: float = 0.0  # a record raises its reference by at least ratio**lift (ablation; 0: off)
    shape_refractory: float = 8.0  # shape evaluations a shape event is held: shape_len / shape_every


@dataclass(slots=True)
class SeriesState:
    """Per-series state; ``to_list``/``from_list`` flatten it for the worker's table."""

    n: int = 0
    mean: float = 0.0
    fast_mean: float = 0.0
    vol: float = 0.0
    last: float = math.nan
    run: int = 0
    hold: float = 1.0
    res_n: int = 0
    res_mean: float = 0.0
    res_var: float = 0.0
    res_prev: float = 0.0
    shape_hold: float = 1.0
    dec_sum: float = 0.0
    dec_n: int = 0
    dec_count: int = 0
    refs: list[float] = field(default_factory=lambda: [0.0] * len(COMPONENTS))
    streaks: list[float] = field(default_factory=lambda: [0.0] * len(COMPONENTS))
    # Histories as packed float64 arrays: 8 bytes a point instead of a list slot plus a
    # float object (~32), copied and serialised as one block (``to_array``).
    shape_buf: array[float] = field(default_factory=lambda: array("d"))
    fine_buf: array[float] = field(default_factory=lambda: array("d"))

    def copy(self) -> SeriesState:
        """Positional, and the histories shared: a batch's undo copy of every state it touches.

        Sharing is safe because the detector never changes a history in place: each append
        makes a new array (``_appended``), which costs no more than the in-place ``del``
        of the oldest point did, and only every ``shape_dec``-th tick instead of every copy.
        """
        return SeriesState(self.n, self.mean, self.fast_mean, self.vol, self.last, self.run, self.hold,
                           self.res_n, self.res_mean, self.res_var, self.res_prev, self.shape_hold,
                           self.dec_sum, self.dec_n, self.dec_count, self.refs[:], self.streaks[:],
                           self.shape_buf, self.fine_buf)

    def to_list(self) -> list[float]:
        return self.to_array().tolist()

    def to_array(self) -> array[float]:
        """The flat layout of ``to_list`` as float64 (the worker's binary checkpoint)."""
        out = array("d", [float(getattr(self, name)) for name in _SCALARS])
        out.extend(self.refs)
        out.extend(self.streaks)
        out.append(float(len(self.shape_buf)))
        out.extend(self.shape_buf)
        out.extend(self.fine_buf)
        return out

    @classmethod
    def from_list(cls, values: Sequence[float]) -> SeriesState:
        """From ``to_list`` or ``to_array`` (a list, or a float64 array for the binary form)."""
        k, c = len(_SCALARS), len(COMPONENTS)
        s = cls(*values[:k])  # type: ignore[arg-type]
        for name in ("n", "run", "dec_n", "dec_count", "res_n"):
            setattr(s, name, int(getattr(s, name)))
        s.refs = [float(v) for v in values[k:k + c]]
        s.streaks = [float(v) for v in values[k + c:k + 2 * c]]
        nb = int(values[k + 2 * c])
        start = k + 2 * c + 1
        s.shape_buf = array("d", values[start:start + nb])
        s.fine_buf = array("d", values[start + nb:])
        return s


_SCALARS = tuple(f.name for f in fields(SeriesState)[:-4])  # the flat layout's head


def unit(ratio: float) -> float:
    """Monotone map of a record ratio to [0, 1): 0.5 is exactly the recent record."""
    return ratio / (1.0 + ratio)


class SeriesDetector:
    """Stateless scorer; all per-series state lives in :class:`SeriesState`."""

    def __init__(self, config: SeriesConfig | None = None) -> None:
        self.config = config or SeriesConfig()
        c = self.config
        self._on = [name in c.components for name in COMPONENTS]
        self._record_parts = [i for i in range(7) if self._on[i]]  # record-ratio components on
        self._hold_decay = 1.0 - 1.0 / c.refractory if c.refractory > 0 else 0.0
        self._shape_decay = 1.0 - 1.0 / c.shape_refractory if c.shape_refractory > 0 else 0.0

    def update(self, state: SeriesState, value: float, residual: float | None = None) -> float:
        """Score ``value`` (and the caller's forecast residual, if any) in [0, 1); update state."""
        return unit(self.ratio(state, value, residual))

    def ratio(self, state: SeriesState, value: float, residual: float | None = None) -> float:
        """The combined ratio of this tick, relative to the last event while it is held.

        After an event of ratio ``R`` (a record), the following ticks are scored against
        ``R`` (decaying back to 1 over ``refractory`` ticks): the rest of the same event
        does not re-fire, a larger one still does.
        """
        r = self.combine(self.ratios(state, value, residual))
        if self.config.refractory <= 0:
            return r
        out = r / state.hold
        if r > state.hold:
            state.hold = r
        state.hold = 1.0 + (state.hold - 1.0) * self._hold_decay
        return out

    def combine(self, ratios: list[float]) -> float:
        """One ratio from the components': records in several at once multiply."""
        top = max(ratios)
        if top <= 1.0 or self.config.combine == "max":
            return top
        prod = 1.0
        for r in ratios:
            if r > 1.0:
                prod *= r
        return min(prod, R_CAP)

    def ratios(self, state: SeriesState, value: float, residual: float | None = None) -> list[float]:
        """Per-component record ratios of this tick (0 for a disabled component or in warm-up)."""
        c = self.config
        s = state
        if s.n == 0:
            s.mean = s.fast_mean = s.last = value
        step = value - s.last
        jump = abs(residual) if residual is not None and math.isfinite(residual) else abs(step)
        same = step == 0.0
        s.run = s.run + 1 if same else 0
        stats = [abs(value - s.mean), jump, abs(s.fast_mean + c.fast * (value - s.fast_mean) - s.mean),
                 s.vol + c.fast * (abs(step) - s.vol), float(s.run), -1.0, -1.0]
        if self._on[5]:
            stats[5] = self._shape(s, value)
        if self._on[6]:
            stats[6] = self._fine(s, value)
        warm = s.n >= c.warmup
        ratios = [0.0] * len(COMPONENTS)
        if self._on[7] and residual is not None and math.isfinite(residual):
            z_ratio = self._resid(s, residual)
            ratios[7] = z_ratio if warm else 0.0
        refs, streaks = s.refs, s.streaks
        # The memory grows with the series' age: records get rarer as the history lengthens,
        # so a long series raises about as few false alarms as a short one (log n records).
        decay = 1.0 - 1.0 / (c.memory + c.age_weight * s.n)
        grow, lift_power = c.grow, c.lift
        # Plain comparisons instead of min()/max() calls: this loop runs per component per tick.
        for i in self._record_parts:
            d = stats[i]
            if d < 0.0:
                continue
            ref = refs[i]
            if not warm:
                if d > ref:
                    refs[i] = d
                continue
            if d <= ref:
                ratios[i] = d / ref if ref > 0.0 else 0.0
                kept = ref * decay
                refs[i] = d if d > kept else kept
                streaks[i] = 0.0
            elif ref > 0.0:
                r = d / ref
                ratios[i] = r if r < R_CAP else R_CAP
                # The k-th record in a row may raise the reference by grow**k: an isolated
                # outlier barely moves it, a new regime is absorbed within a few ticks.
                k = streaks[i] + 1.0
                streaks[i] = k if k < 60.0 else 60.0
                lift = grow ** streaks[i]
                if lift_power > 0.0:
                    lift = max(lift, r ** lift_power)
                raised = ref * lift
                refs[i] = d if d < raised else raised
            else:
                # Nothing but zeros so far: a first change is a record of unknown size (ratio 1).
                ratios[i] = 1.0
                k = streaks[i] + 1.0
                streaks[i] = k if k < 60.0 else 60.0
                refs[i] = d
        if self._shape_decay and stats[5] >= 0.0 and warm:
            # A shape discord persists while the anomalous stretch is inside the subsequence
            # (``shape_len`` decimated points): one stretch, one shape event.
            r5 = ratios[5]
            ratios[5] = r5 / s.shape_hold
            s.shape_hold = 1.0 + (max(s.shape_hold, r5) - 1.0) * self._shape_decay
        # Learn after scoring (causal).
        s.n += 1
        a = max(c.slow, 1.0 / s.n)
        s.mean += a * (value - s.mean)
        s.fast_mean += c.fast * (value - s.fast_mean)
        s.vol += c.fast * (abs(step) - s.vol)
        s.last = value
        return ratios

    def _resid(self, s: SeriesState, residual: float) -> float:
        """A forecast residual in σ of its own robust running statistics, as a ratio.

        Why beside the record ratios: a forecaster's residuals are close to white noise, so
        their σ is a calibrated scale and repeated spikes of the same size all count (a record
        detector sees only the first); ``resid_sigmas`` σ is a ratio of 1. A spike in the value
        makes the residual go +s then -s: two consecutive residuals of opposite sign also score
        as ``(|z_prev| + |z|) / sqrt(2)`` (the matched filter of a one-tick spike).
        """
        c = self.config
        sigma = math.sqrt(s.res_var)
        z = (residual - s.res_mean) / sigma if s.res_n >= 2 and sigma > 0.0 else 0.0
        if abs(z) < 4.0 or s.res_n < 20:  # outliers are scored, not learned
            s.res_n += 1
            a = max(c.resid_alpha, 1.0 / s.res_n)
            lo, hi = s.res_mean - 3 * sigma, s.res_mean + 3 * sigma
            r = residual if s.res_n < 5 else min(max(residual, lo), hi)
            delta = r - s.res_mean
            s.res_mean += a * delta
            s.res_var = (1 - a) * (s.res_var + a * delta * delta)
        prev, s.res_prev = s.res_prev, z
        pair = (abs(prev) + abs(z)) / math.sqrt(2.0) if prev * z < 0.0 else 0.0
        return max(abs(z), pair) / c.resid_sigmas

    def _shape(self, s: SeriesState, value: float) -> float:
        """Nearest-neighbour distance of the newest decimated subsequence, or -1 (not computed)."""
        c = self.config
        s.dec_sum += value
        s.dec_n += 1
        if s.dec_n < c.shape_dec:
            return -1.0
        buf = s.shape_buf = _appended(s.shape_buf, s.dec_sum / s.dec_n, c.shape_hist + 2 * c.shape_len)
        s.dec_sum, s.dec_n = 0.0, 0
        s.dec_count += 1
        m = c.shape_len
        if s.dec_count % c.shape_every or len(buf) < 4 * m:
            return -1.0
        return nn_distance(np.array(buf, dtype=np.float64), m)  # a copy: the buffer stays resizable

    def _fine(self, s: SeriesState, value: float) -> float:
        """The same nearest-neighbour distance on the raw series, short subsequences."""
        c = self.config
        buf = s.fine_buf = _appended(s.fine_buf, value, c.fine_hist + 2 * c.fine_len)
        if s.n % c.fine_every or len(buf) < 4 * c.fine_len:
            return -1.0
        return nn_distance(np.array(buf, dtype=np.float64), c.fine_len)


def _appended(buf: array[float], value: float, cap: int) -> array[float]:
    """A new array: ``buf`` plus ``value``, its oldest points dropped beyond ``cap``.

    Never in place: copies of a state (undo points, snapshots) share the old array.
    """
    out = buf[len(buf) + 1 - cap:] if len(buf) >= cap else buf[:]
    out.append(value)
    return out


def nn_distance(seq: npt.NDArray[np.float64], m: int) -> float:
    """Mean-removed Euclidean distance of the last ``m`` points to the nearest earlier,
    non-overlapping subsequence of ``seq`` (the newest point's matrix-profile value)."""
    q = seq[-m:]
    hist = seq[: seq.size - m]
    if hist.size < m:
        return -1.0
    qc = q - q.mean()
    dots = np.correlate(hist, qc, "valid")  # sum(a * (q - q̄)) = sum((a - ā)(q - q̄))
    c1 = np.concatenate(([0.0], np.cumsum(hist)))
    c2 = np.concatenate(([0.0], np.cumsum(hist * hist)))
    s1 = c1[m:] - c1[:-m]
    s2 = c2[m:] - c2[:-m]
    var_a = s2 - s1 * s1 / m  # sum((a - ā)^2)
    d2 = var_a + float(qc @ qc) - 2.0 * dots
    return math.sqrt(max(float(d2.min()), 0.0))
