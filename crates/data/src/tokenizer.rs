//! SentencePiece-style unigram subword tokenizer on the `tokenizers` crate: NFKC, `▁` for spaces
//! (Metaspace), specials `<s> <pad> </s> <unk>` at ids 0..3 as in fairseq dictionaries.
//! Saved as a `tokenizers` JSON file; an existing SentencePiece `.model` (fairseq, ESPnet) loads too.

use std::collections::BTreeMap;
use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::normalizers::{Precompiled, Replace, Sequence, Strip, NFKC};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{
    parallelism, AddedToken, DecoderWrapper, NormalizedString, Normalizer, NormalizerWrapper,
    OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer,
};

use super::error::DataError;
use super::fs::write_atomic;
use super::sentencepiece::{PieceType, SentencePieceModel};

/// Beginning of sentence.
pub const BOS: &str = "<s>";
/// Padding.
pub const PAD: &str = "<pad>";
/// End of sentence.
pub const EOS: &str = "</s>";
/// Unknown piece.
pub const UNK: &str = "<unk>";

/// A subword tokenizer with the four special ids the model needs.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: u32,
    eos: u32,
    pad: u32,
    unk: u32,
}

fn tok_err(path: Option<&Path>, e: impl std::fmt::Display) -> DataError {
    DataError::Tokenizer {
        path: path.map(Path::to_path_buf),
        reason: e.to_string(),
    }
}

/// `▁` word boundaries, prepended to the first word, as SentencePiece does.
fn metaspace(prepend: bool) -> Metaspace {
    let scheme = if prepend {
        PrependScheme::Always
    } else {
        PrependScheme::Never
    };
    Metaspace::new('▁', scheme, true)
}

/// SentencePiece's `remove_extra_whitespaces`: trim, and collapse runs of spaces.
fn whitespace_normalizers() -> Vec<NormalizerWrapper> {
    vec![
        Strip::new(true, true).into(),
        Replace::new(
            tokenizers::normalizers::replace::ReplacePattern::Regex(" {2,}".into()),
            " ",
        )
        .expect("valid regex")
        .into(),
    ]
}

/// Step between the scores `tokenizers` gives characters missing from the trained model.
const MISSING_CHAR_PENALTY: f64 = 1e-4;

/// The trained `model` in a canonical form. `tokenizers` appends the characters the EM pruned
/// with scores `min + k * 1e-4`, `k` following a hash set's (random) order; here they get their
/// `k` in character order, and pieces are sorted by score, then text. The first `n_specials`
/// pieces (score 0, unknown at `n_specials - 1`) stay first.
fn canonical(model: &Unigram, n_specials: usize) -> Result<Unigram, DataError> {
    let mut pieces: Vec<(String, f64)> = model.iter().skip(n_specials).cloned().collect();
    let min = pieces.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let rank = |s: f64| (s - min) / MISSING_CHAR_PENALTY;
    let mut added: Vec<usize> = (0..pieces.len())
        .filter(|&i| {
            let (piece, score) = &pieces[i];
            let k = rank(*score);
            piece.chars().count() == 1
                && (k - k.round()).abs() < 1e-6
                && k.round() < pieces.len() as f64
        })
        .collect();
    added.sort_by(|&a, &b| pieces[a].0.cmp(&pieces[b].0));
    for (k, &i) in added.iter().enumerate() {
        pieces[i].1 = min + k as f64 * MISSING_CHAR_PENALTY;
    }
    pieces.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let vocab = model
        .iter()
        .take(n_specials)
        .cloned()
        .chain(pieces)
        .collect();
    Unigram::from(vocab, Some(n_specials - 1), false).map_err(|e| tok_err(None, e))
}

impl Tokenizer {
    /// Trains a unigram model of (at most) `vocab_size` pieces, specials included, on `texts`.
    /// On a small corpus the vocabulary may come out smaller; see [`Tokenizer::vocab_size`].
    /// Deterministic: the same texts give the same model (the word counts are sorted and the
    /// EM runs on one thread, unlike `tokenizers`' own `train`, whose hash-map order varies).
    pub fn train(texts: &[String], vocab_size: usize) -> Result<Self, DataError> {
        let specials = [BOS, PAD, EOS, UNK];
        if vocab_size <= specials.len() {
            return Err(DataError::Invalid(format!(
                "vocabulary size {vocab_size} leaves no room beside the 4 special pieces"
            )));
        }
        let mut normalizers = vec![NFKC.into()];
        normalizers.extend(whitespace_normalizers());
        let normalizer = Sequence::new(normalizers);
        let pre_tokenizer = metaspace(true);

        // Word counts, as the trainer's `feed` would make them, but in a fixed order.
        let mut words: BTreeMap<String, u32> = BTreeMap::new();
        for text in texts {
            let mut normalized = NormalizedString::from(text.as_str());
            normalizer
                .normalize(&mut normalized)
                .map_err(|e| tok_err(None, e))?;
            let mut split = PreTokenizedString::from(normalized);
            pre_tokenizer
                .pre_tokenize(&mut split)
                .map_err(|e| tok_err(None, e))?;
            for (word, _, _) in split.get_splits(OffsetReferential::Original, OffsetType::Byte) {
                *words.entry(word.to_string()).or_default() += 1;
            }
        }
        if words.is_empty() {
            return Err(DataError::Invalid(
                "no text to train the tokenizer on".into(),
            ));
        }
        let trainer = UnigramTrainer::builder()
            .show_progress(false)
            .vocab_size(vocab_size as u32)
            .special_tokens(
                specials
                    .iter()
                    .map(|s| AddedToken::from(*s, true))
                    .collect(),
            )
            .unk_token(Some(UNK.into()))
            .build()
            .map_err(|e| tok_err(None, e))?;
        let mut model = Unigram::default();
        let parallel = parallelism::get_parallelism();
        parallelism::set_parallelism(false);
        let trained = trainer.do_train(words.into_iter().collect(), &mut model);
        parallelism::set_parallelism(parallel);
        let specials = trained.map_err(|e| tok_err(None, e))?;

        let mut inner = tokenizers::Tokenizer::new(canonical(&model, specials.len())?);
        inner
            .with_normalizer(Some(normalizer))
            .with_pre_tokenizer(Some(pre_tokenizer))
            .with_decoder(Some(metaspace(true)));
        inner.add_special_tokens(&specials);
        Self::with_specials(inner, None)
    }

    /// Saves as a `tokenizers` JSON file (atomically).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| tok_err(Some(path), e))?;
        write_atomic(path, json.as_bytes())
    }

    /// Loads a file written by [`Tokenizer::save`] (or any `tokenizers` JSON with the four
    /// specials), or a SentencePiece unigram `.model`.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        if bytes.trim_ascii_start().starts_with(b"{") {
            let inner =
                tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| tok_err(Some(path), e))?;
            Self::with_specials(inner, Some(path))
        } else {
            Self::from_sentencepiece(&SentencePieceModel::parse(&bytes, path)?, path)
        }
    }

    /// Builds the same segmentation as SentencePiece from a parsed `.model`. A model without a
    /// padding piece (SentencePiece's default) gets `<pad>` appended after its pieces.
    fn from_sentencepiece(model: &SentencePieceModel, path: &Path) -> Result<Self, DataError> {
        if model.model_type != 1 {
            return Err(tok_err(
                Some(path),
                format!(
                    "only unigram SentencePiece models are supported (model_type {})",
                    model.model_type
                ),
            ));
        }
        let vocab = model
            .pieces
            .iter()
            .map(|p| (p.piece.clone(), p.score as f64))
            .collect();
        let unk_id = model
            .pieces
            .iter()
            .position(|p| p.kind == PieceType::Unknown);
        let unigram = Unigram::from(vocab, unk_id, model.byte_fallback)
            .map_err(|e| tok_err(Some(path), e))?;
        let mut inner = tokenizers::Tokenizer::new(unigram);
        let mut normalizers = Vec::new();
        if !model.precompiled_charsmap.is_empty() {
            let charsmap = Precompiled::from(&model.precompiled_charsmap)
                .map_err(|e| tok_err(Some(path), format!("precompiled charsmap: {e}")))?;
            normalizers.push(charsmap.into());
        }
        if model.remove_extra_whitespaces {
            normalizers.extend(whitespace_normalizers());
        }
        let decoder: DecoderWrapper = if model.byte_fallback {
            DecoderSequence::new(vec![
                ByteFallback::new().into(),
                metaspace(model.add_dummy_prefix).into(),
            ])
            .into()
        } else {
            metaspace(model.add_dummy_prefix).into()
        };
        inner
            .with_normalizer(Some(Sequence::new(normalizers)))
            .with_pre_tokenizer(Some(metaspace(model.add_dummy_prefix)))
            .with_decoder(Some(decoder));
        let mut specials: Vec<AddedToken> = model
            .pieces
            .iter()
            .filter(|p| matches!(p.kind, PieceType::Control | PieceType::Unknown))
            .map(|p| AddedToken::from(p.piece.clone(), true))
            .collect();
        if !model.pieces.iter().any(|p| p.piece == PAD) {
            specials.push(AddedToken::from(PAD, true));
        }
        inner.add_special_tokens(&specials);
        let user: Vec<AddedToken> = model
            .pieces
            .iter()
            .filter(|p| p.kind == PieceType::UserDefined)
            .map(|p| AddedToken::from(p.piece.clone(), false))
            .collect();
        inner.add_tokens(&user);
        Self::with_specials(inner, Some(path))
    }

    fn with_specials(inner: tokenizers::Tokenizer, path: Option<&Path>) -> Result<Self, DataError> {
        let id = |piece: &str| {
            inner
                .token_to_id(piece)
                .ok_or_else(|| tok_err(path, format!("the vocabulary has no {piece} piece")))
        };
        Ok(Self {
            bos: id(BOS)?,
            eos: id(EOS)?,
            pad: id(PAD)?,
            unk: id(UNK)?,
            inner,
        })
    }

    /// Piece ids of `text`, without BOS/EOS.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode_fast(text, false)
            .expect("a tokenizer without truncation or padding cannot fail to encode")
            .get_ids()
            .to_vec()
    }

    /// The pieces of `text` (for inspection).
    pub fn pieces(&self, text: &str) -> Vec<String> {
        self.inner
            .encode_fast(text, false)
            .expect("a tokenizer without truncation or padding cannot fail to encode")
            .get_tokens()
            .to_vec()
    }

    /// Detokenised text of `ids`; special ids are dropped.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner
            .decode(ids, true)
            .expect("decoding known ids cannot fail")
    }

    /// For every id, whether its piece begins a word (starts with `▁`); specials do not.
    pub fn word_starts(&self) -> Vec<bool> {
        (0..self.vocab_size() as u32)
            .map(|id| {
                self.inner
                    .id_to_token(id)
                    .is_some_and(|piece| piece.starts_with('▁'))
            })
            .collect()
    }

    /// Number of ids, specials included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    pub fn pad_id(&self) -> u32 {
        self.pad
    }

    pub fn unk_id(&self) -> u32 {
        self.unk
    }
}
