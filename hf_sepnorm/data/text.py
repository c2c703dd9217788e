"""Plain-text corpora for masked-LM pretraining: loading, a WordPiece tokenizer trained on them, [CLS]-led blocks."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import DatasetDict, load_dataset
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    TrainingArguments,
)

from .splits import with_validation_split
from ..errors import InputError, MissingInputError

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def check_text_files(files: list[str], argument: str, encoding: str = "utf-8") -> None:
    """Stop at start-up, naming the file, if a text file is missing, holds no text, or is not text in `encoding`
    (then naming the offset of the first byte that cannot be decoded, and `--encoding`)."""
    for path in files:
        if not os.path.isfile(path):
            raise MissingInputError(f"{argument}: {path} does not exist.")
        if decoded_text_is_blank(path, argument, encoding):
            raise InputError(f"{argument}: {path} holds no text (empty or only blank lines).")


def decoded_text_is_blank(path: str | os.PathLike, argument: str, encoding: str = "utf-8",
                          block_size: int = 1 << 20) -> bool:  # fmt: skip
    """Decode the whole file with `encoding`, block by block: True when it holds only whitespace. A byte that
    cannot be decoded is one `InputError` naming the file, the byte's offset and the fix."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise InputError(f"--encoding {encoding}: no such text encoding (e.g. utf-8, latin-1, cp1252).") from None
    blank, consumed = True, 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(block_size)
            pending = len(decoder.getstate()[0])  # bytes of a character begun in the previous block
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as error:
                offset = consumed - pending + error.start
                raise InputError(
                    f"{argument}: {path} is not {encoding} text: byte {offset} (0x{error.object[error.start]:02x}) "
                    f"cannot be decoded ({error.reason}). Pass --encoding with the file's encoding (e.g. --encoding "
                    "latin-1), or convert the file to UTF-8."
                ) from None
            blank = blank and not text.strip()
            consumed += len(block)
            if not block:
                return blank


def load_text_corpus(
    train_files: list[str], validation_files: list[str] | None = None, validation_split_percentage: int = 5,
    encoding: str = "utf-8",
) -> DatasetDict:
    """A `DatasetDict` with a `text` column (one line per row, blank lines dropped); without validation files, the
    last `validation_split_percentage` % of the training lines become the validation split. The files are read as
    `encoding` text, checked first (`check_text_files`)."""
    check_text_files(train_files, "--train_file", encoding)
    check_text_files(validation_files or [], "--validation_file", encoding)
    data_files = {"train": train_files, **({"validation": validation_files} if validation_files else {})}
    corpus = load_dataset("text", data_files=data_files, encoding=encoding)
    corpus = corpus.filter(lambda row: bool(row["text"].strip()))
    return with_validation_split(corpus, validation_split_percentage, shuffle=False)


def train_wordpiece_tokenizer(
    texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = True, model_max_length: int = 512
) -> PreTrainedTokenizerFast:
    """A BERT-style WordPiece tokenizer trained on `texts`, ready for `save_pretrained` / `AutoTokenizer`.

    Deterministic: the same text gives the same vocabulary, ids included. The `tokenizers` trainer numbers the
    word-continuing characters ("##e") in the order of a randomly seeded hash map, and breaks ties between equally
    frequent merges by those ids; here they are numbered in sorted order before training (as the trainer's
    special tokens, made ordinary vocabulary again afterwards). `texts` is read twice (it is kept in a list)."""
    texts = texts if isinstance(texts, (list, tuple)) else list(texts)
    backend = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    continuing = sorted(continuing_characters(texts, backend))
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS.values(), *(f"##{char}" for char in continuing)]
    )
    backend.train_from_iterator(texts, trainer)
    # the same vocabulary and ids, with only the real special tokens marked special
    backend.model = models.WordPiece(backend.get_vocab(with_added_tokens=False), unk_token=SPECIAL_TOKENS["unk_token"])
    backend = rebuilt_with_special_tokens(backend)
    backend.decoder = decoders.WordPiece()
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        model_max_length=model_max_length,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        **SPECIAL_TOKENS,
    )


def continuing_characters(texts: Iterable[str], backend: Tokenizer) -> set[str]:
    """The characters that occur inside a word (not first) once `backend` has normalized and pre-tokenized."""
    characters: set[str] = set()
    for text in texts:
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text)):
            characters.update(word[1:])
    return characters


def rebuilt_with_special_tokens(trained: Tokenizer) -> Tokenizer:
    """`trained`'s model, normalizer and pre-tokenizer in a new `Tokenizer` whose added tokens are only the real
    special tokens (at the ids training gave them)."""
    backend = Tokenizer(trained.model)
    backend.normalizer = trained.normalizer
    backend.pre_tokenizer = trained.pre_tokenizer
    backend.add_special_tokens(list(SPECIAL_TOKENS.values()))
    return backend


def cls_led_blocks(corpus: DatasetDict, tokenizer: PreTrainedTokenizerBase, block_length: int) -> DatasetDict:
    """Concatenate the tokenized text and cut it into `[CLS] ... [SEP]` blocks of `block_length` tokens, so that
    position 0 is [CLS] in every example (what SepNorm's [CLS] norm normalizes). Each split also gets an `index`
    column, the block's position in it, which seeds its masks in `SeededMaskingCollator`."""
    body_length = block_length - 2
    if body_length < 1:
        raise InputError(f"--max_seq_length {block_length} leaves no room between [CLS] and [SEP].")

    def tokenize(batch):
        return {"ids": tokenizer(batch["text"], add_special_tokens=False)["input_ids"]}

    def into_blocks(batch):
        stream = [token for ids in batch["ids"] for token in ids]
        starts = range(0, len(stream) - body_length + 1, body_length)
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        input_ids = [[cls, *stream[start : start + body_length], sep] for start in starts]
        return {"input_ids": input_ids, "special_tokens_mask": [[1] + [0] * body_length + [1]] * len(input_ids)}

    tokenized = corpus.map(tokenize, batched=True, remove_columns=corpus["train"].column_names, desc="Tokenizing")
    blocks = tokenized.map(into_blocks, batched=True, batch_size=1000, remove_columns=["ids"], desc="Cutting blocks")
    for split, dataset in blocks.items():
        if len(dataset) == 0:
            raise InputError(f"The {split} text is shorter than one block of {block_length} tokens.")
    return DatasetDict({split: dataset.add_column("index", range(len(dataset))) for split, dataset in blocks.items()})


# Beside a tokenizer this package trained: what it was trained on. Its leading "_" keeps it out of Hub pushes.
TOKENIZER_SOURCE_FILE = "_tokenizer_trained_on.json"


def train_tokenizer_once(
    texts: Callable[[], Iterable[str]],
    vocab_size: int,
    save_dir: str,
    training_args: TrainingArguments,
    checkpoint: str | None = None,
) -> PreTrainedTokenizerFast:
    """The WordPiece tokenizer of a run that starts from scratch, trained once for the run:

    - resuming from `checkpoint`: the tokenizer saved in it, the one its weights were trained with;
    - `save_dir` already holds the tokenizer trained on the same text with the same `vocab_size`: that one;
    - otherwise it is trained (deterministically) and saved to `save_dir`, with the fingerprint of its text.
    The main process trains; the others load its copy, so that every process holds the same vocabulary."""
    if checkpoint is not None and (Path(checkpoint) / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(checkpoint)
    # local=False: global rank 0 writes it, so the first process of every other node waits too (a shared output_dir)
    with training_args.main_process_first(local=False, desc="training the tokenizer"):
        if training_args.process_index != 0:
            return AutoTokenizer.from_pretrained(save_dir)
        texts = list(texts())
        source = {"vocab_size": vocab_size, "text_sha256": text_fingerprint(texts)}
        source_file = Path(save_dir) / TOKENIZER_SOURCE_FILE
        if source_file.is_file() and json.loads(source_file.read_text()) == source:
            return AutoTokenizer.from_pretrained(save_dir)
        tokenizer = train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
        tokenizer.save_pretrained(save_dir)
        source_file.write_text(json.dumps(source))
        return tokenizer


def text_fingerprint(texts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", errors="surrogatepass") + b"\0")
    return digest.hexdigest()


@dataclass
class SeededMaskingCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling` whose masks do not come from the global random state: each example's are
    drawn from a generator seeded by (`seed`, `epoch`, the example's `index` column).

    The data loader collates a batch ahead of training, so the global random state a checkpoint saves is already
    past the next batch's masks: with the stock collator, a resumed run masks that batch differently (and dropout
    then draws other numbers too) and does not reach the weights of an uninterrupted run. Keep `epoch` current with
    `hf_sepnorm.data.epochs.EpochCallback`, and let `index` reach the collator (`remove_unused_columns=False`)."""

    seed: int = 0
    epoch: int = 0

    def __post_init__(self):
        super().__post_init__()
        if not self.mlm or self.return_tensors != "pt":
            raise ValueError(
                "SeededMaskingCollator masks tokens as PyTorch tensors: use mlm=True and return_tensors='pt'."
            )

    def torch_call(self, examples: list[dict]) -> dict:
        if not isinstance(examples[0], Mapping) or "index" not in examples[0]:
            raise ValueError(
                "SeededMaskingCollator seeds each example's masks with its `index`: add the column (cls_led_blocks "
                "does) and train with remove_unused_columns=False so that the Trainer keeps it."
            )
        indices = [example["index"] for example in examples]
        batch = self.tokenizer.pad(
            [{key: value for key, value in example.items() if key != "index"} for example in examples],
            return_tensors="pt",
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        special_tokens_mask = batch.pop("special_tokens_mask", None)
        if special_tokens_mask is None:
            special_tokens_mask = torch.tensor([
                self.tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
                for ids in batch["input_ids"].tolist()
            ])  # fmt: skip
        offset_mapping = batch.pop("offset_mapping", None)
        inputs, labels = [], []
        for row, index in enumerate(indices):
            # hash() of a tuple of ints does not depend on PYTHONHASHSEED: the same in every process and run
            self.generator = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(index))) % 2**63)
            row_inputs, row_labels = self.torch_mask_tokens(
                batch["input_ids"][row : row + 1].clone(),
                special_tokens_mask=special_tokens_mask[row : row + 1],
                offset_mapping=None if offset_mapping is None else offset_mapping[row : row + 1],
            )
            inputs.append(row_inputs)
            labels.append(row_labels)
        batch["input_ids"], batch["labels"] = torch.cat(inputs), torch.cat(labels)
        return batch


