"""Exact solution of linear compartment models driven by NONMEM-style event records.

Between events the state moves by the matrix exponential of the augmented system
``[[K, R], [0, 0]]`` (R = the running zero-order input), which is exact for linear models; no
ODE integrator runs here. Steady state (SS=1 replaces, SS=2 adds) is the infinite superposition
of past doses, summed in closed form as a geometric series of ``expm(K II)``.

Conventions (checked against NONMEM output, tests/pk/data/nmtests-1001 and
tests/data/reference/pk-nonmem):
* events the engine creates (lagged doses, ADDL doses, infusion ends) at time t happen before
  data rows at time t; rows at the same time are processed in file order;
* Fn scales a bolus; for RATE > 0 and RATE = -1 it changes the duration, for RATE = -2 the rate;
* a reset (EVID 3/4, SS=1) also cancels running infusions and pending generated doses;
* a steady-state infusion (SS=1 or 2, AMT=0, RATE>0, II=0) sets (SS=1) or adds (SS=2) the
  state of an infusion at RATE run for ever, ``-K^-1 R``; as in NONMEM the infusion itself
  does not continue after the record (give a separate infusion record to continue it);
* the output on each row is the state after that row's event.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import count

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import expm

from withdrawal.errors import InputError
from withdrawal.pk.events import EventRecord
from withdrawal.pk.models import LinearModel

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Dose:
    """A dose after lag and bioavailability: bolus (duration 0) or zero-order infusion."""

    cmt: int  # 0-based
    amount: float
    duration: float  # h; 0 = bolus; inf = constant infusion (then ``amount`` is 0)
    constant_rate: float = 0.0  # amount/h of a constant (steady-state) infusion

    @property
    def rate(self) -> float:
        if math.isinf(self.duration):
            return self.constant_rate
        return self.amount / self.duration if self.duration > 0 else 0.0


class _System:
    """Propagators of one linear model, cached by step length and input."""

    def __init__(self, k: FloatArray) -> None:
        self.k = k
        self.n = k.shape[0]
        self._cache: dict[tuple[float, tuple[float, ...]], FloatArray] = {}

    def step(self, x: FloatArray, dt: float, rates: FloatArray) -> FloatArray:
        """State after ``dt`` hours with constant zero-order inputs ``rates``."""
        if dt <= 0:
            return x
        key = (dt, tuple(rates.tolist()))
        m = self._cache.get(key)
        if m is None:
            aug = np.zeros((self.n + 1, self.n + 1))
            aug[: self.n, : self.n] = self.k * dt
            aug[: self.n, self.n] = rates * dt
            m = expm(aug)
            if len(self._cache) < 4096:
                self._cache[key] = m
        return m[: self.n, : self.n] @ x + m[: self.n, self.n]

    def response(self, dose: Dose, elapsed: float) -> FloatArray:
        """State ``elapsed`` hours after one dose given to an empty system."""
        zero = np.zeros(self.n)
        if dose.duration == 0:
            x = zero.copy()
            x[dose.cmt] = dose.amount
            return self.step(x, elapsed, zero)
        rates = zero.copy()
        rates[dose.cmt] = dose.rate
        if elapsed <= dose.duration:
            return self.step(zero, elapsed, rates)
        return self.step(self.step(zero, dose.duration, rates), elapsed - dose.duration, zero)

    def steady_state(self, dose: Dose, ii: float, lag: float) -> FloatArray:
        """State at a dose record's time from infinitely many past doses every ``ii`` hours.

        Past doses start at ``lag - j*ii`` (j >= 1) relative to now; the record's own dose is
        not included (it is given at ``lag``).
        """
        if math.isinf(dose.duration):  # constant infusion at steady state
            rates = np.zeros(self.n)
            rates[dose.cmt] = dose.rate
            return np.asarray(-np.linalg.solve(self.k, rates), dtype=np.float64)
        eye = np.eye(self.n)
        phi = self.step(eye, ii, np.zeros(self.n)) if ii > 0 else eye
        try:
            tail_inv = np.linalg.inv(eye - phi)
        except np.linalg.LinAlgError:
            raise InputError("SS", "no steady state: a compartment has no elimination") from None
        total = np.zeros(self.n)
        j = 1
        while j * ii - lag < dose.duration:  # doses still infusing now: sum directly
            total += self.response(dose, j * ii - lag)
            j += 1
        end_state = self.response(dose, dose.duration)
        rest = self.step(tail_inv @ end_state, j * ii - lag - dose.duration, np.zeros(self.n))
        return total + rest


def _make_dose(rec: EventRecord, cmt: int) -> Dose:
    """Apply Fn and RATE/Rn/Dn of the record to its amount."""
    f = rec.cmt_value("F", rec.cmt, 1.0)
    amount = rec.amt * f
    r = rec.row + 1
    if rec.rate == 0:
        return Dose(cmt, amount, 0.0)
    if rec.rate > 0:
        if rec.ss and rec.ii == 0 and rec.amt == 0:
            # steady-state constant infusion: RATE is the rate; F (which scales amounts and so
            # changes a RATE>0 infusion's duration) has no amount to act on
            return Dose(cmt, 0.0, math.inf, constant_rate=rec.rate)
        return Dose(cmt, amount, amount / rec.rate)
    if rec.rate == -1:
        rn = rec.cmt_value("R", rec.cmt, 0.0)
        if rn <= 0:
            raise InputError(f"R{rec.cmt}", f"row {r}: RATE=-1 needs R{rec.cmt} > 0", value=rn)
        return Dose(cmt, amount, amount / rn)
    dn = rec.cmt_value("D", rec.cmt, 0.0)
    if dn <= 0:
        raise InputError(f"D{rec.cmt}", f"row {r}: RATE=-2 needs D{rec.cmt} > 0", value=dn)
    return Dose(cmt, amount, dn)


class _Subject:
    """Event loop of one individual."""

    def __init__(self, system: _System, n: int) -> None:
        self.sys = system
        self.n = n
        self.x = np.zeros(n)
        self.t = 0.0
        self.rates = np.zeros(n)
        self.queue: list[tuple[float, int, str, Dose]] = []
        self.seq = count()
        self.epoch = 0  # bumps on reset; queued events of older epochs are dropped

    def push(self, time: float, kind: str, dose: Dose) -> None:
        heapq.heappush(self.queue, (time, next(self.seq), f"{kind}#{self.epoch}", dose))

    def advance(self, to: float) -> None:
        """Move to time ``to``, applying generated events that fall on or before it."""
        while self.queue and self.queue[0][0] <= to:
            time, _, kind, dose = heapq.heappop(self.queue)
            name, epoch = kind.split("#")
            if int(epoch) != self.epoch:
                continue
            self._move(time)
            self._apply(name, dose)
        self._move(to)

    def _move(self, to: float) -> None:
        if to > self.t:
            self.x = self.sys.step(self.x, to - self.t, self.rates)
            self.t = to

    def _apply(self, kind: str, dose: Dose) -> None:
        if kind == "give":
            if dose.duration == 0:
                self.x[dose.cmt] += dose.amount
            else:
                self.rates[dose.cmt] += dose.rate
                if not math.isinf(dose.duration):
                    self.push(self.t + dose.duration, "stop", dose)
        elif kind == "stop":
            self.rates[dose.cmt] -= dose.rate
            if abs(self.rates[dose.cmt]) < 1e-12 * max(1.0, dose.rate):
                self.rates[dose.cmt] = 0.0

    def reset(self) -> None:
        self.x = np.zeros(self.n)
        self.rates = np.zeros(self.n)
        self.epoch += 1

    def dose_record(self, rec: EventRecord) -> None:
        if not 1 <= rec.cmt <= self.n:
            raise InputError("CMT", f"row {rec.row + 1}: dose compartment must be 1-{self.n}",
                             value=rec.cmt, allowed=range(1, self.n + 1))
        cmt = rec.cmt - 1
        dose = _make_dose(rec, cmt)
        lag = rec.cmt_value("ALAG", rec.cmt, 0.0)
        if rec.ss:
            self._steady_state(rec, dose, lag)
            if math.isinf(dose.duration):
                return
        times = [rec.time + lag + j * rec.ii for j in range(rec.addl + 1)]
        for i, when in enumerate(times):
            if i == 0 and lag == 0:
                self._apply("give", dose)
            else:
                self.push(when, "give", dose)

    def _steady_state(self, rec: EventRecord, dose: Dose, lag: float) -> None:
        if rec.ii > 0 and lag >= rec.ii:
            raise InputError(f"ALAG{rec.cmt}", f"row {rec.row + 1}: a steady-state dose needs a "
                             "lag time shorter than II", value=lag)
        ss = self.sys.steady_state(dose, rec.ii, lag)
        if rec.ss == 1:
            self.reset()
            self.x = ss
        else:
            self.x = self.x + ss
        if math.isinf(dose.duration):
            # NONMEM starts the system at the infusion's steady state and does not run the
            # infusion on past the record (nmtests 1001 scenario 29: CP falls from R/CL at once)
            return
        j = 1
        while j * rec.ii - lag < dose.duration:  # past infusions still running now
            self.rates[dose.cmt] += dose.rate
            self.push(rec.time + dose.duration - (j * rec.ii - lag), "stop", dose)
            j += 1


def simulate_records(
    records: Sequence[EventRecord], model: LinearModel, params: Mapping[str, float]
) -> dict[str, FloatArray]:
    """Outputs of ``model`` on every record, in input order.

    Returns the model's output columns (e.g. ``CP``) plus the amounts ``A1..An``.
    """
    resolved = model.resolve(params)
    system = _System(model.rate_matrix(resolved))
    amounts = np.zeros((len(records), model.n))
    subjects: dict[str, _Subject] = {}
    for pos, rec in enumerate(records):
        subj = subjects.get(rec.id)
        if subj is None:
            subj = subjects[rec.id] = _Subject(system, model.n)
            subj.t = rec.time
        subj.advance(rec.time)
        if rec.evid in (3, 4):
            subj.reset()
        if rec.is_dose:
            subj.dose_record(rec)
        amounts[pos] = subj.x
    out = model.outputs(amounts, resolved)
    out.update({f"A{i + 1}": amounts[:, i] for i in range(model.n)})
    return out
