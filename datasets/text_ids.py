"""Texts to token ids in NumPy: the mapping of Keras' `TextVectorization` with its defaults, without TensorFlow.

`TextVectorization` runs on TensorFlow whatever the Keras backend, so the text recipes vectorize
here instead, on every backend (`zoo.datasets.sequences.vectorize_texts`: JAX and PyTorch need no
TensorFlow), and `zoo.serving.Text` maps raw requests with the same functions. What they reproduce, read from Keras
3.15's layer and checked against it by `tests/test_recurrent.py` on real texts:

- standardize `"lower_and_strip_punctuation"`: `tf.strings.lower` lowercases ASCII letters only
  (`"É"` stays `"É"`), then the characters of `string.punctuation` are removed;
- split `"whitespace"`: `tf.strings.split` cuts on runs of ASCII whitespace (`" \\t\\n\\v\\f\\r"`)
  only, so a no-break space stays inside a word;
- the vocabulary (`adapt`): id 0 padding (`""`), id 1 out of vocabulary (`"[UNK]"`), then the
  training tokens by count, most frequent first, ties broken by the token in descending code-point
  order (Keras' `np.lexsort((tokens, counts))[::-1]`), at most `max_tokens` ids in all;
- ids: a token's index in the vocabulary, 1 when it is not there; the first `sequence_length`
  tokens are kept, and shorter texts are padded with 0 at the end.
"""

import collections
import itertools
import re
import string

import numpy as np

# Ids every vocabulary reserves, as the layer does: its mask token and its out-of-vocabulary token.
PAD_TOKEN, OOV_TOKEN = "", "[UNK]"
OOV = 1
# One pass of str.translate does both standardize steps: ASCII A-Z to a-z (tf.strings.lower without
# an encoding) and deleting Keras' DEFAULT_STRIP_REGEX class, which is exactly string.punctuation.
_STANDARDIZE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
# tf.strings.split with no separator: runs of ASCII whitespace; str.split() would also cut on
# Unicode spaces and on the \x1c-\x1f separators, which the layer keeps inside tokens.
_TOKEN = re.compile(r"[^ \t\n\v\f\r]+")


def tokenize(texts):
    """The tokens of each text after standardization, in order.

    Args:
        texts: strings.

    Returns:
        One list of tokens (non-empty strings) per text.
    """
    return [_TOKEN.findall(text.translate(_STANDARDIZE)) for text in texts]


def adapt(tokenized, max_tokens):
    """The vocabulary `TextVectorization(max_tokens=max_tokens).adapt(texts)` learns.

    Args:
        tokenized: the training texts' tokens (`tokenize(texts)`).
        max_tokens: the vocabulary size, the two reserved ids included (at least 3).

    Returns:
        The vocabulary, id -> token: `["", "[UNK]", most frequent token, ...]`.
    """
    counts = collections.Counter(itertools.chain.from_iterable(tokenized))
    # The layer drops its own two tokens from the counts. Standardizing removes "[" and "]", so
    # "[UNK]" cannot occur, and no token is empty; the rule stays in case standardizing changes.
    for reserved in (PAD_TOKEN, OOV_TOKEN):
        counts.pop(reserved, None)
    # Count descending, then token descending: Keras' reversed lexsort. For str, code-point order
    # is the UTF-8 byte order NumPy compares the layer's tokens in.
    ranked = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return [PAD_TOKEN, OOV_TOKEN] + [token for token, _ in ranked[: max_tokens - 2]]


def encode(tokenized, vocabulary, sequence_length):
    """Token ids, as `TextVectorization(vocabulary=..., output_sequence_length=...)` gives them.

    Args:
        tokenized: the texts' tokens (`tokenize(texts)`).
        vocabulary: id -> token, the two reserved ids first (`adapt`, or a logged model's).
        sequence_length: tokens kept per text; shorter texts are padded with 0 at the end.

    Returns:
        An int32 array of shape (len(tokenized), sequence_length).
    """
    table = {str(token): index for index, token in enumerate(vocabulary) if index >= 2}
    out = np.zeros((len(tokenized), sequence_length), dtype="int32")
    for row, found in enumerate(tokenized):
        kept = [table.get(token, OOV) for token in found[:sequence_length]]
        out[row, : len(kept)] = kept
    return out
