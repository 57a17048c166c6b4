"""The canonical text and SHA-256 chain of a column-wise journal, written in bulk.

:func:`chain_hashes` writes the canonical text of every transaction of a
:class:`~simulator.ledger.Journal` (byte for byte
:func:`simulator.ledger.canonical_txn` of its dict form) with one compiled kernel,
from the journal's integer arrays and small tables of ``json.dumps``'d text, and
hashes it transaction by transaction (each hash needs the one before it).

The hashing itself is OpenSSL's SHA-256 (the ``libcrypto`` that Python's own
:mod:`hashlib` uses), called from a compiled loop (:func:`_chain_kernel`) that also
writes each hash, in hex, into the next transaction's text; where ``libcrypto``
cannot be loaded, the same chain is computed with :mod:`hashlib` in Python.
Both give identical hashes (a test compares them).
"""
from __future__ import annotations

import ctypes.util
import hashlib
import json
from typing import Sequence

import numpy as np
from numba import njit, types

from simulator.kernel import K_RETURN, K_SHORTFALL, KIND_NAMES

__all__ = ["CHAIN_SCHEME", "GENESIS", "chain_hashes"]

GENESIS = "0" * 64
"""The ``prev_hash`` of a journal's first transaction."""
CHAIN_SCHEME = "cohortlab-ledger-v1:sha256"
"""Name of the chain's canonical form and hash (stored with the run's head)."""
_PREFIX_DEPOSIT, _PREFIX_ALLOCATION = -2, -1  # fill-kind codes of the opening transactions
_SHA = hashlib.sha256
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8).copy()
# OpenSSL's one-shot SHA256(data, len, md): linked by symbol name, so the kernel stays cacheable
_OPENSSL_SHA256 = types.ExternalFunction("SHA256", types.voidptr(types.voidptr, types.uintp, types.voidptr))
_native: bool | None = None
_force_python = [False]  # tests set it to compare the Python path with the compiled one


def _native_sha256() -> bool:
    """Whether OpenSSL's libcrypto is loaded for :func:`_chain_kernel` (tried once per process)."""
    global _native
    if _native is None:
        try:
            import llvmlite.binding as llvm

            path = ctypes.util.find_library("crypto")
            if path is None:
                raise OSError("libcrypto not found")
            llvm.load_library_permanently(path)
            _native = True
        except Exception:  # noqa: BLE001 - no libcrypto: hash in Python (same hashes, slower)
            _native = False
    return _native


@njit(cache=True)
def _chain_kernel(data, bounds, hexd, genesis):
    """SHA-256 chain over ``data``: transaction ``i`` is ``data[bounds[i]:bounds[i+1]]``
    whose 64 bytes before its last 2 receive the previous hash in hex (``genesis`` for
    the first); returns the ``(n, 64) uint8`` hex hashes."""
    n = bounds.shape[0] - 1
    out = np.empty((n, 64), np.uint8)
    md = np.zeros(32, np.uint8)
    prev = genesis.copy()
    for i in range(n):
        a = bounds[i]
        b = bounds[i + 1]
        for j in range(64):
            data[b - 66 + j] = prev[j]
        _OPENSSL_SHA256(data[a:].ctypes.data, b - a, md.ctypes.data)
        for j in range(32):
            prev[2 * j] = hexd[md[j] >> 4]
            prev[2 * j + 1] = hexd[md[j] & 15]
            out[i, 2 * j] = prev[2 * j]
            out[i, 2 * j + 1] = prev[2 * j + 1]
    return out


def _table(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """ASCII strings -> (one uint8 buffer, offsets ``(len + 1,)``) for :func:`_canonical_kernel`."""
    off = np.zeros(len(strings) + 1, np.int64)
    np.cumsum(list(map(len, strings)), out=off[1:])
    return np.frombuffer("".join(strings).encode("ascii"), np.uint8), off


@njit(cache=True, inline="always")
def _put(out, o, buf, boff, i):
    """Copy entry ``i`` of a table into ``out`` at ``o``; the new end."""
    for j in range(boff[i], boff[i + 1]):
        out[o] = buf[j]
        o += 1
    return o


_U10 = np.uint64(10)
_POW10 = np.array([10 ** k for k in range(20)], dtype=np.uint64)


@njit(cache=True, inline="always")
def _put_int(out, o, v, width):
    """Write integer ``v`` in decimal (zero-padded to ``width`` digits) at ``o``; the new end."""
    if v < 0:
        out[o] = 45  # '-'
        o += 1
        u = np.uint64(-v)
    else:
        u = np.uint64(v)
    nd = 1
    while nd < 20 and u >= _POW10[nd]:
        nd += 1
    if nd < width:
        nd = width
    for d in range(nd - 1, -1, -1):
        out[o + d] = np.uint8(u % _U10) + 48
        u //= _U10
    return o + nd


@njit(cache=True)
def _canonical_kernel(tbar, kidx, midx, off, acc, units, qidx, qneg, psym, ktok, ktok_off, time_t, time_off,
                      memo_t, memo_off, acc_t, acc_off, sym_t, sym_off, qrep, qrep_off, cap):
    """The canonical text of every transaction (see :func:`chain_hashes`), written back to back
    into one buffer, each with 64 bytes left for its ``prev_hash``: returns (buffer, offsets ``(n + 1,)``)."""
    n = len(tbar)
    out = np.empty(cap, np.uint8)
    toff = np.empty(n + 1, np.int64)
    o = 0
    for i in range(n):
        toff[i] = o
        out[o] = 91  # '['
        o = _put_int(out, o + 1, i, 0)
        out[o] = 44  # ','
        out[o + 1] = 34  # '"'
        o = _put_int(out, o + 2, i, 8)
        o = _put(out, o, ktok, ktok_off, kidx[i])      # -kind",
        o = _put_int(out, o, tbar[i], 0)
        o = _put(out, o, time_t, time_off, tbar[i] + 1)  # ,"time",
        o = _put(out, o, memo_t, memo_off, midx[i])    # "kind",memo,[
        for k in range(off[i], off[i + 1]):
            if k > off[i]:
                out[o] = 44
                o += 1
            o = _put(out, o, acc_t, acc_off, acc[k])   # [account,
            o = _put_int(out, o, units[k], 0)
            q = qidx[k]
            if q < 0:
                for c in (44, 110, 117, 108, 108, 44, 110, 117, 108, 108, 93):  # ,null,null]
                    out[o] = c
                    o += 1
            else:
                out[o] = 44
                out[o + 1] = 34
                o += 2
                if qneg[k]:
                    out[o] = 45
                    o += 1
                o = _put(out, o, qrep, qrep_off, q)  # ,"qty
                o = _put(out, o, sym_t, sym_off, psym[k])  # ",symbol]
        out[o] = 93  # ']'
        out[o + 1] = 44
        out[o + 2] = 34
        o += 3 + 64  # room for prev_hash, written by the chain
        out[o] = 34
        out[o + 1] = 93  # '"]'
        o += 2
    toff[n] = o
    return out, toff


def chain_hashes(accounts: list[str], symbols: list[str], agent_ids: list[str], times: list[str], start: str,
                  tbar: np.ndarray, tfk: np.ndarray, tagent: np.ndarray, tsym: np.ndarray, tbuy: np.ndarray,
                  off: np.ndarray, acc: np.ndarray, units: np.ndarray, qty: np.ndarray,
                  psym: np.ndarray) -> list[str]:
    """The chain of a column-wise journal: the ``hash`` of every transaction, in order.

    The canonical text of every transaction (exactly :func:`simulator.ledger.canonical_txn` of its
    dict form, up to ``prev_hash``) is written in bulk by a compiled kernel from the
    integers and small tables of ``json.dumps``'d text (accounts, symbols, memos,
    kinds, times) and the ``repr`` of each quantity; only the SHA-256 of
    ``text + prev_hash + '"]'`` runs per transaction in Python (it needs the hash
    before it).
    """
    n = len(tbar)
    if n == 0:
        return []
    dumps = json.dumps
    S, N = len(symbols), len(agent_ids)
    nk = len(KIND_NAMES)
    cap = (tfk == K_RETURN) | (tfk == K_SHORTFALL)
    # '"kind",memo,[' by (kind, memo): fills by (kernel kind, side, symbol); capital movements by
    # (kind, agent); allocations by agent; the deposit
    memos = ([f'"fill",{dumps(f"{KIND_NAMES[k]} {side} {sym}")},[' for k in range(nk)
              for side in ("sell", "buy") for sym in symbols]
             + [f'{dumps(KIND_NAMES[k])},{dumps(a)},[' for k in (K_SHORTFALL, K_RETURN) for a in agent_ids]
             + [f'"allocation",{dumps(f"allocate to {a}")},[' for a in agent_ids]
             + ['"deposit","parent bankroll",['])
    m_cap, m_alloc, m_dep = 2 * nk * S, 2 * nk * S + 2 * N, 2 * nk * S + 3 * N
    midx = np.where(tfk == _PREFIX_DEPOSIT, m_dep,
                    np.where(tfk == _PREFIX_ALLOCATION, m_alloc + tagent,
                             np.where(cap, m_cap + (tfk == K_RETURN) * N + tagent,
                                      (2 * tfk + tbuy) * S + tsym))).astype(np.int64)
    # '-kind",' of the txn_id: kernel kinds (capital movements), fill, deposit, allocation
    kidx = np.where(tfk == _PREFIX_DEPOSIT, nk + 1,
                    np.where(tfk == _PREFIX_ALLOCATION, nk + 2, np.where(cap, tfk, nk))).astype(np.int64)
    # quantities: repr of each distinct |qty| (a close repeats its opening quantity), signed in the
    # kernel (repr(-x) == "-" + repr(x) for every float x, -0.0 and inf included)
    has_q = ~np.isnan(qty)
    qidx = np.full(len(acc), -1, np.int64)
    q_abs, q_inv = np.unique(np.abs(qty[has_q]), return_inverse=True)
    qidx[has_q] = q_inv.reshape(-1)
    qneg = np.signbit(qty) & has_q
    tables = [_table([f'-{k}",' for k in list(KIND_NAMES) + ["fill", "deposit", "allocation"]]),
              _table([f",{dumps(start)},"] + [f',"{t}",' for t in times]),  # ISO times need no escaping
              _table(memos),
              _table([f"[{dumps(a)}," for a in accounts]),
              _table([f'",{dumps(s)}]' for s in symbols]),
              _table(list(map(repr, q_abs.tolist())))]
    # an upper bound of the text's length: 20 characters per number, the longest table entry per field
    longest = [int(np.diff(t[1]).max(initial=0)) for t in tables]
    cap_len = n * (3 * 20 + 8 + 66 + sum(longest[:3])) + len(acc) * (20 + 14 + sum(longest[3:]))
    out, toff = _canonical_kernel(tbar, kidx, midx, off, acc, units, qidx, qneg, psym.astype(np.int64),
                                  *[a for t in tables for a in t], cap_len)
    if _native_sha256() and not _force_python[0]:
        hexes = _chain_kernel(out, toff, _HEX, np.frombuffer(GENESIS.encode(), np.uint8).copy())
        return hexes.view("S64").ravel().astype("U64").tolist()
    data = memoryview(out)
    bounds = toff.tolist()
    sha = _SHA
    hashes: list[str] = []
    append = hashes.append
    prev = GENESIS.encode()
    for a, b in zip(bounds, bounds[1:]):
        data[b - 66:b - 2] = prev
        h = sha(data[a:b]).hexdigest()
        append(h)
        prev = h.encode()
    return hashes
