#!/usr/bin/python3
"""Renders every chat template x conversation with Jinja2 configured exactly as Hugging Face transformers
configures it (transformers/utils/chat_template_utils.py, _compile_jinja_template), and records what it
produced: the rendered text, or that the template called raise_exception, or that Jinja2 raised some
other error. The C++ test compares `moe template` against these files. Python and Jinja2 are only the
oracle for this test; moe itself needs neither.

usage: gen_expected.py templates TEMPLATES_DIR CONVERSATIONS_DIR OUT_DIR --now YYYY-MM-DD
       gen_expected.py snippets SNIPPETS_FILE CONTEXT_JSON OUT_DIR --now YYYY-MM-DD
Writes OUT_DIR/manifest.json ([{template, conversation, status, file|message}]; for snippets
[{index, line, status, file|message}]) and one file per rendering with the exact bytes. status is "ok",
"raise_exception" (the template called raise_exception) or "error" (Jinja2 raised anything else).
"""
import argparse
import datetime
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class RaisedByTemplate(jinja2.exceptions.TemplateError):
    """What raise_exception() raises (transformers raises a plain TemplateError; a subclass lets us tell
    it apart from Jinja2's own errors without changing any rendering)."""


class AssistantTracker(Extension):
    # transformers' {% generation %} ... {% endgeneration %}: a call block that renders its body unchanged
    # (the index tracking it adds when active does not change the text).
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def make_env(now):
    def raise_exception(message):
        raise RaisedByTemplate(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return now.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, context, out_dir, name, entry):
    """Renders one template into entry (status and file or message)."""
    try:
        text = env.from_string(source).render(**context)
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="") as f:
            f.write(text)
        entry.update(status="ok", file=name)
    except RaisedByTemplate as e:
        entry.update(status="raise_exception", message=str(e))
    except Exception as e:
        entry.update(status="error", message=f"{type(e).__name__}: {e}")
    return entry


def read_snippets(path):
    """Snippets are separated by lines '#---'; the text before the first separator is a header."""
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    snippets, current, start = [], None, 0
    for i, line in enumerate(lines):
        if line == "#---":
            if current is not None:
                snippets.append((start, "\n".join(current)))
            current, start = [], i + 2
        elif current is not None:
            current.append(line)
    if current is not None:
        snippets.append((start, "\n".join(current)))
    return snippets


def run_snippets(env, args):
    with open(args.conversations, encoding="utf-8") as f:
        context = json.load(f)
    manifest = []
    for index, (line, source) in enumerate(read_snippets(args.templates)):
        entry = {"index": index, "line": line, "source": source}
        manifest.append(render(env, source, context, args.out, f"snippet_{index:03d}.txt", entry))
    return manifest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["templates", "snippets"])
    ap.add_argument("templates", help="templates folder, or the snippets file")
    ap.add_argument("conversations", help="conversations folder, or the snippets' context JSON")
    ap.add_argument("out")
    ap.add_argument("--now", required=True)
    args = ap.parse_args()
    now = datetime.datetime.strptime(args.now, "%Y-%m-%d")  # midnight, like `moe template --now`
    env = make_env(now)
    os.makedirs(args.out, exist_ok=True)
    if args.mode == "snippets":
        manifest = run_snippets(env, args)
        with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=1)
        print(f"{len(manifest)} snippets, jinja2 {jinja2.__version__}", file=sys.stderr)
        return
    manifest = []
    templates = sorted(f for f in os.listdir(args.templates) if f.endswith(".jinja"))
    conversations = sorted(f for f in os.listdir(args.conversations) if f.endswith(".json"))
    for t in templates:
        with open(os.path.join(args.templates, t), encoding="utf-8", newline="") as f:
            source = f.read()
        try:
            compiled = env.from_string(source)
            compile_error = None
        except Exception as e:  # a template Jinja2 cannot compile fails for every conversation
            compiled, compile_error = None, e
        for c in conversations:
            with open(os.path.join(args.conversations, c), encoding="utf-8") as f:
                context = json.load(f)
            entry = {"template": t, "conversation": c}
            try:
                if compile_error is not None:
                    raise compile_error
                text = compiled.render(**context)
                name = f"{t[:-len('.jinja')]}__{c[:-len('.json')]}.txt"
                with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                entry.update(status="ok", file=name)
            except RaisedByTemplate as e:
                entry.update(status="raise_exception", message=str(e))
            except Exception as e:
                entry.update(status="error", message=f"{type(e).__name__}: {e}")
            manifest.append(entry)
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=1)
    print(f"{len(manifest)} renderings, jinja2 {jinja2.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
