#!/usr/bin/env python3
"""Seed corpora for the fuzzers (scripts/test.sh): chat templates and the Jinja snippets for fuzz_jinja, the
test conversations behind a template-picking byte for fuzz_template_context, tokenizer vector texts behind a
pre-tokenizer-picking byte for fuzz_tokenizer. Usage: make_seeds.py TESTDATA OUT_DIR (without the test data
folder, only the seeds from this repository)."""
import os
import sys

SEP = '\n__ggml_vocab_test__\n'


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), 'wb') as f:
        f.write(data)


def main():
    testdata, out = sys.argv[1], sys.argv[2]
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
    templates_dir = os.path.join(testdata, 'templates')
    templates = sorted(f for f in os.listdir(templates_dir) if f.endswith('.jinja')) if os.path.isdir(templates_dir) else []

    jinja = os.path.join(out, 'corpus_jinja')
    for name in templates:
        with open(os.path.join(templates_dir, name), 'rb') as f:
            write(jinja, name, f.read())
    with open(os.path.join(src, 'tests/jinja/snippets.txt'), 'rb') as f:
        snippets = f.read().split(b'\n#---\n')[1:]  # the first part is the file's header
    for i, s in enumerate(snippets):
        write(jinja, f'snippet-{i:03d}.jinja', s)

    # fuzz_template_context sorts the .jinja files the same way, so byte i picks templates[i].
    conv_dir = os.path.join(src, 'tests/jinja/conversations')
    convs = [os.path.join(conv_dir, f) for f in sorted(os.listdir(conv_dir))]
    convs.append(os.path.join(src, 'tests/jinja/snippet_context.json'))
    for i in range(len(templates)):
        with open(convs[i % len(convs)], 'rb') as f:
            write(os.path.join(out, 'corpus_context'), f'seed-{i:03d}.json', bytes([i % 256]) + f.read())

    texts = []
    common = os.path.join(testdata, 'tokenizer/hf/vectors/common.inp')
    if os.path.exists(common):
        with open(common, encoding='utf-8') as f:
            texts = f.read().split(SEP)
    with open(os.path.join(src, 'tests/tokenizer/multilingual.txt'), encoding='utf-8') as f:
        texts += f.read().split('\n')
    for i, t in enumerate(t for t in texts if t):
        write(os.path.join(out, 'corpus_tokenizer'), f'seed-{i:03d}', bytes([i % 256]) + t.encode())


if __name__ == '__main__':
    main()
