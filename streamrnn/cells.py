"""What each recurrent cell is, declared once.

A :class:`Cell` says what the rest of the package needs to know of a cell: the kernels' dispatch
code (``kernels/forward.py`` and ``kernels/gradient.py`` call the cell module's ``forward_step``
and ``backward_window`` by it), the number of gate pre-activations per unit, whether it keeps a
cell state beside ``h``, whether it has a bias inside the recurrent product or a recurrent matrix
at all, how its weights start, and which rows of the activation window a stored model can leave
out because they are recomputed, bit for bit, from the rows it keeps. The state layout
(``layout.py``), the estimators, the command line and the docs read it.

Adding a cell: a kernel module in ``kernels/`` (forward step and backward pass), its code and its
dispatch branches (``kernels/forward.py``, ``kernels/gradient.py``), one declaration here, and
its tests (which parametrise over :data:`CELLS`). minGRU was added that way.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from .kernels import blocks
from .kernels import forward as E
from .kernels import lstm as lstm_kernels


def _keep_all(kind, lo, hi):
    """Rows ``(first, end)`` of window block ``kind`` that a stored model keeps: the state row
    ``lo`` where the next window starts from (its h, c and token), and the steps after it."""
    return (lo if kind in (blocks.HS, blocks.CS, blocks.TOK) else min(lo + 1, hi)), hi


def _rebuild_nothing(hs, cs, act, aux, steps):
    pass


def _h_recomputed(kind, lo, hi):
    """LSTM and RNN: a step's h follows from its other rows (o * tanh(c); the RNN's activation),
    and so does AUX (the LSTM's tanh(c); unused by the RNN)."""
    if kind == blocks.AUX:
        return hi, hi
    if kind == blocks.HS:
        return lo, min(lo + 1, hi)  # only the state row's h
    return _keep_all(kind, lo, hi)


def _aux_unused(kind, lo, hi):
    """minGRU: no AUX rows (the cell writes none), every other row kept."""
    if kind == blocks.AUX:
        return hi, hi
    return _keep_all(kind, lo, hi)


def _rnn_rebuild(hs, cs, act, aux, steps):
    hs[:, steps] = act[:, steps]


def _lstm_rebuild(hs, cs, act, aux, steps):
    for layer in range(hs.shape[0]):
        lstm_kernels.restore_window(cs[layer, steps], act[layer, steps], aux[layer, steps], hs[layer, steps])


def _no_bias(bx, hidden):
    pass


def _forget_bias_one(bx, hidden):
    bx[hidden:2 * hidden] = 1.0  # gates (i, f, g, o): a forget gate open by default remembers


@dataclasses.dataclass(frozen=True)
class Cell:
    name: str
    code: int  # the kernels' dispatch code
    gates: int  # gate pre-activations per unit
    cell_state: bool  # a cell state c beside h (LSTM)
    recurrent_bias: bool  # a bias inside the recurrent product (GRU: r * (Wh h + bh))
    summary: str
    recurrent_weights: bool = True  # a recurrent matrix WH (H, gates * H); minGRU's gates read x only
    init_bias: Callable = _no_bias  # (bx of one layer, hidden size): the input biases at the start
    stored_rows: Callable = _keep_all  # (window block kind, lo, hi) -> the rows a stored model keeps
    rebuild: Callable = _rebuild_nothing  # (hs, cs, act, aux, steps): recompute the rows left out

    def cell_width(self, hidden: int) -> int:
        return hidden if self.cell_state else 0

    def recurrent_bias_width(self, hidden: int) -> int:
        return hidden if self.recurrent_bias else 0

    def recurrent_rows(self, hidden: int) -> int:
        return hidden if self.recurrent_weights else 0


CELLS = {cell.name: cell for cell in (
    Cell("lstm", E.LSTM, gates=4, cell_state=True, recurrent_bias=False, summary="LSTM (forget-gate bias 1)",
         init_bias=_forget_bias_one, stored_rows=_h_recomputed, rebuild=_lstm_rebuild),
    Cell("gru", E.GRU, gates=3, cell_state=False, recurrent_bias=True, summary="GRU (reset and update gates)"),
    Cell("rnn", E.RNN, gates=1, cell_state=False, recurrent_bias=False, summary="Elman RNN (tanh)",
         stored_rows=_h_recomputed, rebuild=_rnn_rebuild),
    Cell("mingru", E.MINGRU, gates=2, cell_state=False, recurrent_bias=False, recurrent_weights=False,
         summary="minGRU (gates from the input only: no recurrent matrix)", stored_rows=_aux_unused),
)}


def lookup(name) -> Cell:
    """The declaration of cell ``name``; a ``ValueError`` naming the known cells otherwise."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"cell must be one of {', '.join(map(repr, CELLS))}, got {name!r}") from None
