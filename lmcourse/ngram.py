"""N-gram language models, fit by counting.

An n-gram model predicts the next token from the previous n - 1 tokens only:

    P(x_t | x_{t-n+1} .. x_{t-1}) = (c(context, x_t) + k) / (c(context) + k * V)

where c counts occurrences in the training sequence, V is the vocabulary size and k >= 0 is
the add-k smoothing constant (k = 0 is the maximum-likelihood estimate, plain normalised
counts). Tokens can be anything hashable: characters of a string, words of a list.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence

Token = Hashable
Context = tuple


class NGramLM:
    """An n-gram model with add-k smoothing over a fixed vocabulary.

    `n` is the order (1 = unigram, 2 = bigram, ...), `k` the add-k constant. Fit it with
    `fit(tokens)`; a context never seen in training gets the uniform distribution (with
    k > 0 that is what the formula gives anyway; with k = 0 the estimate is 0/0, and uniform
    is the usual convention). Derived in chapters/01_language_models.ipynb.
    """

    def __init__(self, n: int, k: float = 0.0) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        if not isinstance(k, (int, float)) or isinstance(k, bool) or not k >= 0 or math.isinf(k):
            raise ValueError(f"k must be a finite number >= 0, got {k!r}")
        self.n = n
        self.k = float(k)
        self.vocab: list[Token] = []
        self.counts: dict[Context, Counter] = {}
        self.context_totals: dict[Context, int] = {}
        self._index: dict[Token, int] = {}

    # ------------------------------------------------------------------ fitting
    def fit(self, tokens: Sequence[Token], vocab: Iterable[Token] | None = None) -> "NGramLM":
        """Count every n-gram of `tokens` (a string or a list of tokens) and return self.

        The vocabulary is `vocab` when given (it must contain every training token), else the
        set of training tokens; it is kept sorted so results never depend on hash order.
        Derived in chapters/01_language_models.ipynb.
        """
        tokens = list(tokens)
        if len(tokens) < self.n:
            raise ValueError(f"need at least n={self.n} tokens to fit, got {len(tokens)}")
        seen = set(tokens)
        if vocab is None:
            vocab_set = seen
        else:
            vocab_set = set(vocab)
            missing = seen - vocab_set
            if missing:
                raise ValueError(f"vocab is missing training tokens, e.g. {sorted(map(repr, missing))[:5]}")
        self.vocab = _sorted_tokens(vocab_set)
        self._index = {t: i for i, t in enumerate(self.vocab)}
        counts: dict[Context, Counter] = defaultdict(Counter)
        m = self.n - 1
        for i in range(m, len(tokens)):
            counts[tuple(tokens[i - m : i])][tokens[i]] += 1
        self.counts = dict(counts)
        self.context_totals = {ctx: sum(c.values()) for ctx, c in self.counts.items()}
        return self

    @property
    def vocab_size(self) -> int:
        """V, the number of distinct tokens the model can predict."""
        return len(self.vocab)

    @property
    def num_contexts(self) -> int:
        """How many distinct (n-1)-token contexts were seen in training."""
        return len(self.counts)

    @property
    def num_ngrams(self) -> int:
        """How many distinct n-grams were seen: the non-zero entries of the count table."""
        return sum(len(c) for c in self.counts.values())

    # --------------------------------------------------------------- prediction
    def _context(self, context: Sequence[Token]) -> Context:
        self._require_fit()
        context = tuple(context)
        m = self.n - 1
        if len(context) < m:
            raise ValueError(f"an order-{self.n} model needs a context of {m} tokens, got {len(context)}: {context!r}")
        return context[len(context) - m :] if m else ()

    def prob(self, context: Sequence[Token], token: Token) -> float:
        """P(token | last n-1 tokens of context) with add-k smoothing.

        Raises ValueError if `token` is not in the vocabulary or the context is too short.
        Derived in chapters/01_language_models.ipynb.
        """
        ctx = self._context(context)
        if token not in self._index:
            raise ValueError(f"token {token!r} is not in the vocabulary (pass vocab= to fit to include it)")
        total = self.context_totals.get(ctx, 0)
        V = len(self.vocab)
        if total == 0 and self.k == 0:
            return 1.0 / V
        c = self.counts[ctx][token] if total else 0
        return (c + self.k) / (total + self.k * V)

    def logprob(self, context: Sequence[Token], token: Token) -> float:
        """Natural log of `prob(context, token)`; -inf when the probability is 0 (k = 0, unseen n-gram).

        Derived in chapters/01_language_models.ipynb.
        """
        p = self.prob(context, token)
        return math.log(p) if p > 0 else -math.inf

    def distribution(self, context: Sequence[Token]) -> list[float]:
        """P(· | context) over `self.vocab` (in that order); sums to 1.

        Derived in chapters/01_language_models.ipynb.
        """
        ctx = self._context(context)
        V = len(self.vocab)
        total = self.context_totals.get(ctx, 0)
        if total == 0:
            return [1.0 / V] * V
        c = self.counts[ctx]
        denom = total + self.k * V
        return [(c.get(t, 0) + self.k) / denom for t in self.vocab]

    def sequence_logprob(self, tokens: Sequence[Token]) -> float:
        """Sum of log P(x_t | previous n-1 tokens) for t = n-1 .. len-1 (natural log).

        The first n-1 tokens only serve as context, so len(tokens) - (n-1) tokens are scored.
        Derived in chapters/01_language_models.ipynb.
        """
        tokens = list(tokens)
        m = self.n - 1
        if len(tokens) <= m:
            raise ValueError(f"need more than n-1={m} tokens to score, got {len(tokens)}")
        return sum(self.logprob(tokens[i - m : i], tokens[i]) for i in range(m, len(tokens)))

    def perplexity(self, tokens: Sequence[Token]) -> float:
        """exp(-mean log-probability per scored token): the effective branching factor.

        A uniform model over V tokens has perplexity V; an unseen n-gram under k = 0 gives inf.
        Derived in chapters/01_language_models.ipynb.
        """
        tokens = list(tokens)
        lp = self.sequence_logprob(tokens)
        if lp == -math.inf:
            return math.inf
        return math.exp(-lp / (len(tokens) - (self.n - 1)))

    # ----------------------------------------------------------------- sampling
    def sample(
        self, length: int, seed: int = 0, prompt: Sequence[Token] | None = None, temperature: float = 1.0
    ) -> list[Token]:
        """Draw `length` new tokens one at a time from P(· | context); returns prompt + new tokens.

        Without a prompt, the first n-1 tokens are a training context drawn in proportion to
        its count. `temperature` rescales log-probabilities (1 = the model itself). The draws
        use their own random.Random(seed), so the same seed gives the same text everywhere.
        Derived in chapters/01_language_models.ipynb.
        """
        self._require_fit()
        if not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be an int >= 0, got {length!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        rng = random.Random(seed)
        m = self.n - 1
        if prompt is None:
            contexts = sorted(self.counts, key=_sort_key_tuple)
            weights = [self.context_totals[c] for c in contexts]
            out = list(rng.choices(contexts, weights=weights)[0])
        else:
            out = list(prompt)
            if len(out) < m:
                raise ValueError(f"prompt needs at least n-1={m} tokens, got {len(out)}")
        for _ in range(length):
            probs = self.distribution(out[len(out) - m :] if m else ())
            if temperature != 1.0:
                logits = [math.log(p) / temperature if p > 0 else -math.inf for p in probs]
                top = max(logits)
                probs = [math.exp(lg - top) for lg in logits]
            out.append(rng.choices(self.vocab, weights=probs)[0])
        return out

    def _require_fit(self) -> None:
        if not self.vocab:
            raise ValueError("the model is not fitted yet: call fit(tokens) first")

    def __repr__(self) -> str:
        return f"NGramLM(n={self.n}, k={self.k:g}, vocab_size={len(self.vocab)}, contexts={len(self.counts)})"


def _sort_key(t: Token) -> tuple[str, str]:
    return (type(t).__name__, repr(t))


def _sort_key_tuple(ctx: tuple) -> tuple:
    return tuple(_sort_key(t) for t in ctx)


def _sorted_tokens(tokens: Iterable[Token]) -> list[Token]:
    """Sort tokens of any (possibly mixed) type without relying on hash order."""
    tokens = list(tokens)
    try:
        return sorted(tokens)
    except TypeError:
        return sorted(tokens, key=_sort_key)


def ngram_counts(tokens: Sequence[Token], n: int) -> Counter:
    """Counter of every n-gram (as a tuple) in `tokens`. Derived in chapters/01_language_models.ipynb."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    tokens = list(tokens)
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
