"""MinHash signatures and LSH band keys of article bodies, vectorised over whole batches."""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from transforms.text import folded, is_cjk_text

U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

# Chosen on bench/neardup_eval.py (labelled BBC set, 690 edited copies, 629 hard negatives):
# - 3-word shingles: an edit touches few shingles, so updated copies keep Jaccard >= 0.37 (99%
#   of them), while hard negatives (same category, same dateline lead, some even the same first
#   sentence) never pass 0.12.
# - 4-character shingles for Chinese, which has no spaces: about one word and a half.
SHINGLE_WORDS = 3
SHINGLE_CHARS = 4
# 128 permutations: the estimate's standard error at J=0.4 is sqrt(.24/128) = 0.043, so hard
# negatives (<= 0.12) sit six errors below the threshold and the set's precision is 1.0.
NUM_PERM = 128
# 32 bands of 3 rows (the first 96 values; verification uses all 128): the S-curve's midpoint
# (1/32)^(1/3) = 0.31 sits below the threshold, so a pair at J=0.4 becomes a candidate with
# probability 1-(1-.4^3)^32 = 0.88, at J=0.5 with 0.99. 4 rows lost 3% of recall at 0.4;
# 42 bands of 3 gained nothing measurable and cost a third more postings to scan each night.
BANDS = 32
ROWS = 3
# Default threshold on the estimated Jaccard: the sweep keeps precision 1.0 down to 0.3 and
# recall rises to 0.986 at 0.4; 0.4 keeps a wide margin over the hard negatives' 0.12.
THRESHOLD = 0.4

# Signature of a body without any shingle: matches nothing (see has_shingles).
EMPTY = np.uint32(0xFFFFFFFF)
# Shingles hashed per 2-D block, whole bodies only. Measured on the labelled set's 970,000
# shingles (all 128 permutations at once): 8,192 and 4,096 took half the time of 16,384;
# 2,048 and less three times as long (more bodies outgrow the block).
_BLOCK_SHINGLES = 8_192
# Permutations per pass over a block: 16 x 8,192 x 8 bytes = 1 MB of scratch, which stays in a
# core's cache from the multiply to the minimum; all 128 at once (8 MB) spill to the shared
# cache. On 3,000 bench bodies, best of 25: 33.5 us a body against 36.4 alone, 32-43 against
# 36-47 with two processes at once (as the parse workers run), 34 against 58 with the test suite
# running beside; 8 per pass was slower than 16.
_PERM_GROUP = 16
assert NUM_PERM % _PERM_GROUP == 0
# Text bytes per tokenising chunk (about a hundred bodies): per-byte scratch arrays of 2 MB stay
# in cache, and the per-chunk overhead of a few dozen numpy calls stays negligible.
_CHUNK_BYTES = 1 << 18
_SPACE = ord(" ")
_CJK_LEAD = re.compile(rb"[\xe3-\xe9]")
_K_MAX = max(SHINGLE_WORDS, SHINGLE_CHARS)


def _seeded(name: str, n: int) -> U64:
    """Fixed random 64-bit constants: the same in every process (a named seed, never hash())."""
    seed = int.from_bytes(name.encode(), "little") % 2**63
    return np.random.default_rng(seed).integers(1, 2**64 - 1, size=n, dtype=np.uint64)


# Multiply-add-shift permutations h(x) = (a*x + b) >> 32 over 32-bit shingle hashes: a
# 2-independent family (Dietzfelbinger 1996) that needs no modulo, unlike datasketch's prime field.
_PERM_A = _seeded("wirehouse-minhash-a", NUM_PERM) | np.uint64(1)
_PERM_B = _seeded("wirehouse-minhash-b", NUM_PERM)
_SHINGLE_MULT = _seeded("wirehouse-shingle", _K_MAX) | np.uint64(1)
_BAND_SALT = _seeded("wirehouse-band", BANDS)
# The token hash's base: an odd 64-bit constant (so it has an inverse mod 2^64), and its powers
# for one chunk of text; a text longer than a chunk computes its own.
_P = np.uint64(0x9E3779B97F4A7C15)
_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))


def _mix64(x: U64) -> U64:
    """SplitMix64's finaliser: every output bit depends on every input bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def folded_tokens(body: str, text: bytes | None = None) -> tuple[bytes, int]:
    """The body's tokens (words, or characters for Chinese) between spaces, and its shingle size.

    `text` is the body `folded` already, if the caller has it. Runs of spaces may remain: token
    boundaries are found in bulk later, so no split is needed.
    """
    if text is None:
        text = folded(body)
    if body.isascii():  # runs in C and settles most bodies without the slower checks below
        return text, SHINGLE_WORDS
    # CJK ideographs (U+3400-U+9FFF) have UTF-8 lead bytes E3-E9: a byte scan spares most
    # non-ASCII bodies (a pound sign, curly quotes) the CJK test's regexes.
    if _CJK_LEAD.search(body.encode("utf-8")) is not None and is_cjk_text(body):
        # One token per character: str.join walks the string in C, no per-character loop here.
        return " ".join("".join(text.decode("utf-8").split())).encode("utf-8"), SHINGLE_CHARS
    return b" ".join(text.split()), SHINGLE_WORDS


def _token_hashes(text: bytes) -> tuple[U64, I64]:
    """A stable 64-bit hash of every space-separated token of text, and where each starts.

    A token's hash is the polynomial sum of (byte+1) * P^(distance to its end), mod 2^64, read
    off one prefix sum over the whole text, then mixed: a handful of passes over the bytes.
    """
    data = np.frombuffer(text, dtype=np.uint8)
    if data.size == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    edges = np.diff((data != _SPACE).view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    prefix = np.empty(data.size + 1, dtype=np.uint64)
    prefix[0] = 0
    weighted = data.astype(np.uint64)
    weighted += np.uint64(1)
    weighted *= _powers(_P_INVERSE, data.size)
    np.cumsum(weighted, out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * _powers(_P, data.size)[ends - 1]
    return _mix64(hashes), starts.astype(np.int64)


def _powers(base: np.uint64, n: int) -> U64:
    """base^0 .. base^(n-1) mod 2^64: the precomputed table, or a longer one for a long text."""
    table = _P_POWERS if base == _P else _P_INVERSE_POWERS
    if n <= table.size:
        return table[:n]
    return _power_table(base, n)


def _power_table(base: np.uint64, n: int) -> U64:
    """base^0 .. base^(n-1) mod 2^64 (uint64 products wrap, which is the modulus we want)."""
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


# Twice a chunk: a chunk stops growing at _CHUNK_BYTES, so only a body longer than a chunk
# overflows the table and pays for its own.
_P_POWERS = _power_table(_P, 2 * _CHUNK_BYTES)
_P_INVERSE_POWERS = _power_table(_P_INVERSE, 2 * _CHUNK_BYTES)


def _window_hashes(tokens: U64, counts: I64, ks: I64) -> tuple[I64, U32]:
    """(document, 32-bit hash) of every k-token window of each document, all at once.

    Windows never cross documents; a document shorter than its k has one window of all its
    tokens, so a three-word body still has a shingle.
    """
    n = tokens.size
    ends = np.cumsum(counts)
    doc_of = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    end_of, k_of = ends[doc_of], ks[doc_of]
    index = np.arange(n, dtype=np.int64)
    padded = np.concatenate((tokens, np.zeros(_K_MAX, dtype=np.uint64)))
    acc = np.zeros(n, dtype=np.uint64)
    for j in range(_K_MAX):  # over offsets in a window (at most 4), not over tokens
        inside = (j < k_of) & (index + j < end_of)
        acc += np.where(inside, padded[j : j + n] * _SHINGLE_MULT[j], np.uint64(0))
    first = index == (end_of - counts[doc_of])
    valid = (index + k_of <= end_of) | (first & (counts[doc_of] < k_of))
    return doc_of[valid], (_mix64(acc[valid]) >> np.uint64(32)).astype(np.uint32)


def _chunk_windows(texts: list[bytes], ks: I64) -> tuple[I64, U32]:
    """Window hashes of a chunk of folded texts, tokenised together in one pass."""
    joined = b" ".join(texts)
    lengths = np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts))
    text_starts = np.cumsum(lengths) - lengths
    tokens, token_starts = _token_hashes(joined)
    doc_of = np.searchsorted(text_starts, token_starts, side="right") - 1
    counts = np.bincount(doc_of, minlength=len(texts)).astype(np.int64)
    return _window_hashes(tokens, counts, ks)


def shingles(body: str) -> U32:
    """The body's distinct shingle hashes, sorted: the set whose Jaccard MinHash estimates."""
    flat, _starts = _batch_shingles([body])
    return np.unique(flat)


def _batch_shingles(bodies: list[str], texts: list[bytes] | None = None) -> tuple[U32, I64]:
    """Shingle hashes of many bodies (`folded` as `texts`, if given), concatenated, and where
    each body's run starts."""
    docs: list[I64] = []
    hashes: list[U32] = []
    begin = 0
    while begin < len(bodies):
        # Chunks of about _CHUNK_BYTES of text, tokenised and shingled together.
        pending: list[bytes] = []
        ks: list[int] = []
        size = 0
        while begin + len(pending) < len(bodies) and size < _CHUNK_BYTES:
            at = begin + len(pending)
            tokens, k = folded_tokens(bodies[at], None if texts is None else texts[at])
            pending.append(tokens)
            ks.append(k)
            size += len(tokens) + 1
        doc, shingle = _chunk_windows(pending, np.array(ks, dtype=np.int64))
        docs.append(doc + begin)
        hashes.append(shingle)
        begin += len(pending)
    if not hashes:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    # Windows come out grouped by document already. Repeated shingles stay: a minimum over a
    # multiset is the minimum over its set, and skipping the sort saves a third of the time.
    doc_ids = np.concatenate(docs)
    starts = np.searchsorted(doc_ids, np.arange(len(bodies), dtype=np.int64)).astype(np.int64)
    return np.concatenate(hashes), starts


def signatures(bodies: list[str], texts: list[bytes] | None = None) -> U32:
    """MinHash signatures of the bodies: one row of NUM_PERM uint32 minima per body.

    `texts`, if given, are the bodies `folded` already (row-aligned), which spares folding
    them again.
    """
    flat, starts = _batch_shingles(bodies, texts)
    return signatures_of_shingles(flat, starts)


def signatures_of_shingles(flat: U32, starts: I64) -> U32:
    """Signatures from concatenated shingle hashes, documents starting at `starts`."""
    n = starts.size
    out = np.full((n, NUM_PERM), EMPTY, dtype=np.uint32)
    ends = np.append(starts[1:], flat.size)
    scratch = np.empty((_PERM_GROUP, _BLOCK_SHINGLES), dtype=np.uint64)
    doc = 0
    while doc < n:
        # Whole documents per block (a long one alone), so each column's minimum is final.
        last = max(doc + 1, int(np.searchsorted(ends, starts[doc] + _BLOCK_SHINGLES, "right")))
        lo, hi = int(starts[doc]), int(ends[last - 1])
        present = ends[doc:last] > starts[doc:last]
        if hi > lo:
            shingles = flat[lo:hi].astype(np.uint64)
            runs = (starts[doc:last] - lo)[present]
            minima = np.empty((NUM_PERM, runs.size), dtype=np.uint64)
            for first in range(0, NUM_PERM, _PERM_GROUP):  # 8 passes, not one per shingle
                block = _permuted(shingles, first, scratch)
                # Permutations along rows, shingles along columns: reduceat reads contiguous runs.
                np.minimum.reduceat(block, runs, axis=1, out=minima[first : first + _PERM_GROUP])
            out[doc:last][present] = (minima.T >> np.uint64(32)).astype(np.uint32)
        doc = last
    return out


def _permuted(x: U64, first: int, scratch: U64) -> U64:
    """(a_j * x + b_j) mod 2^64 for the _PERM_GROUP permutations j from `first`, every x."""
    rows = slice(first, first + _PERM_GROUP)
    cols = x.size
    block = (
        scratch[:, :cols] if cols <= scratch.shape[1] else np.empty((_PERM_GROUP, cols), np.uint64)
    )
    np.multiply(_PERM_A[rows, None], x[None, :], out=block)
    np.add(block, _PERM_B[rows, None], out=block)
    return block


def has_shingles(sigs: U32) -> npt.NDArray[np.bool_]:
    """Which signatures come from a body with at least one shingle (others match nothing)."""
    return np.asarray(~np.all(sigs == EMPTY, axis=1))


def band_keys(sigs: U32) -> U64:
    """LSH keys: one uint64 per band, salted by band number so all bands share one key space."""
    n = sigs.shape[0]
    rows = sigs[:, : BANDS * ROWS].reshape(n, BANDS, ROWS).astype(np.uint64)
    keys = np.broadcast_to(_BAND_SALT, (n, BANDS)).copy()
    for j in range(ROWS):  # a loop over the 3 rows of a band, not over documents
        keys = _mix64(keys ^ (rows[:, :, j] + np.uint64(j)))
    return keys


def estimated_similarity(sig_a: U32, sig_b: U32) -> float:
    """Estimated Jaccard similarity of two bodies: the share of equal signature positions."""
    if not (has_shingles(sig_a[None, :])[0] and has_shingles(sig_b[None, :])[0]):
        return 0.0
    return float(np.count_nonzero(sig_a == sig_b)) / sig_a.size


def pair_similarities(sigs_a: U32, sigs_b: U32) -> npt.NDArray[np.float64]:
    """Estimated Jaccard of row i of sigs_a with row i of sigs_b, for every i at once."""
    equal = np.count_nonzero(sigs_a == sigs_b, axis=1) / NUM_PERM
    valid = has_shingles(sigs_a) & has_shingles(sigs_b)
    return np.where(valid, equal, 0.0).astype(np.float64)


def verified(
    new_sigs: U32, pairs: I64, old_sigs: U32, threshold: float = THRESHOLD
) -> tuple[I64, npt.NDArray[np.float64]]:
    """Candidate pairs (new row, old row) whose estimated Jaccard reaches the threshold."""
    if pairs.size == 0:
        return pairs.reshape(0, 2), np.zeros(0, dtype=np.float64)
    sims = pair_similarities(new_sigs[pairs[:, 0]], old_sigs[pairs[:, 1]])
    keep = sims >= threshold
    return pairs[keep], sims[keep]


def candidate_pairs(keys: U64) -> I64:
    """Pairs (i, j), i < j, of rows sharing at least one band key, each once, sorted."""
    n, bands = keys.shape
    flat = keys.reshape(-1)
    order = np.argsort(flat, kind="stable")  # stable: rows stay ascending within a bucket
    flat = flat[order]
    rows = order // bands
    found: list[I64] = []
    # Rows k and k+d hold equal keys: a pair. d grows until no bucket is that large.
    d = 1
    while d < flat.size:
        same = flat[d:] == flat[:-d]
        if not same.any():
            break
        found.append(rows[:-d][same] * n + rows[d:][same])
        d += 1
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    codes = np.sort(np.concatenate(found))
    codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
    pairs = np.stack((codes // n, codes % n), axis=1)
    result: I64 = pairs[pairs[:, 0] != pairs[:, 1]].astype(np.int64)
    return result
